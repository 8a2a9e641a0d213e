"""Everything the bot says, in English and Russian, picked by the user's ``language_code``."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "help": (
            "👋 Send me a selfie and I'll tell you which celebrity you look like.\n\n"
            "Tips for a good match:\n"
            "• face the camera, good light, no sunglasses;\n"
            "• one face fills a good part of the photo;\n"
            "• a photo or an image file (JPEG, PNG, WebP) both work.\n\n"
            "In groups, mention me in the caption, reply to me with a photo, or reply /lookalike to a photo.\n\n"
            "⚙️ /settings — choose who you're matched with: women, men or anyone.\n\n"
            "🔒 Your photos are processed in memory and never stored."
        ),
        "cmd_start": "What the bot does",
        "cmd_help": "Tips for a good selfie",
        "cmd_lookalike": "Reply to a photo: who does it look like?",
        "cmd_settings": "Match me with: women, men or anyone",
        "settings": (
            "⚙️ <b>Who should I match you with?</b>\n\n"
            "“✨ Like my photo” picks look-alikes of the same sex as the face in each photo. Tap a choice and "
            "I'll remember it for every photo you send me, here and in groups.\n\n"
            "🔒 I keep only the choice you make — never a guess about you."
        ),
        "match_auto": "✨ Like my photo",
        "match_F": "👩 Women",
        "match_M": "👨 Men",
        "match_any": "🌍 Anyone",
        "match_saved": "Saved! Match me with: {choice}",
        "match_not_saved": "Sorry, I couldn't save your choice right now. Please try again later.",
        "look_striking": "🤩 A striking resemblance! You look like <b>{name}</b> — {similarity}",
        "look_strong": "😮 You look a lot like <b>{name}</b> — {similarity}",
        "look_clear": "🙂 You look like <b>{name}</b> — {similarity}",
        "look_hint": "😉 There's a hint of <b>{name}</b> about you — {similarity}",
        "look_unique": "🦄 You're one of a kind! Your closest match is <b>{name}</b> — {similarity}",
        "face_line": "{n}. <b>{name}</b> — {similarity}",
        "faces_header": "I found {count} faces:",
        "faces_more": "Tap a number for that face's card.",
        "faces_limit": "(the {limit} largest are numbered)",
        "more_button": "More matches",
        "blend_button": "🎭 Blend",
        "blend_caption": "You → <b>{name}</b>",
        "no_landmarks": "🙈 I couldn't trace {whose} precisely enough to blend. Try a clearer, front-facing photo.",
        "your_face": "your face",
        "celebrity_face": "the celebrity's face",
        "more_header": "More look-alikes:",
        "no_face": "🤔 I couldn't find a face in this photo. Try a well-lit selfie, facing the camera.",
        "not_an_image": "🖼 I couldn't open this image. Please send a JPEG, PNG or WebP photo.",
        "too_large": "📏 This image is too large for me. Please send a smaller photo (under 20 MB).",
        "file_too_big": "📦 This file is over 20 MB, the most Telegram lets bots download. Please send it as a photo.",
        "not_a_photo": "🙂 I can only read photos. Send me a selfie as a photo or as an image file.",
        "sticker": "😄 Nice sticker! But I need a real photo of a face.",
        "video": "🎬 I can't watch videos or GIFs yet — send me a photo instead.",
        "busy": "⏳ I'm very busy right now. Please try again in a minute.",
        "failed": "😔 Sorry, something went wrong with your photo. Please try again.",
        "still_trying": "🐌 Telegram is slow right now. I'm still working on your photo — the answer is on its way.",
        "slow_down": "🐢 That's a lot of photos! Please wait a minute before sending more.",
        "reply_to_photo": "Reply /lookalike to a photo and I'll tell you who it looks like.",
        "expired": "This result has expired — send the photo again.",
        "not_yours": "These buttons belong to the person who sent the photo.",
        "invalid_button": "This button doesn't work anymore.",
        "thanks": "Thanks for the feedback!",
        "not_saved": "Sorry, I couldn't save your vote right now.",
        "admins_only": "This command is for the bot's operators.",
    },
    "ru": {
        "help": (
            "👋 Пришлите селфи, и я скажу, на какую знаменитость вы похожи.\n\n"
            "Советы для хорошего результата:\n"
            "• смотрите в камеру, хороший свет, без тёмных очков;\n"
            "• лицо занимает заметную часть кадра;\n"
            "• подойдёт фото или файл-изображение (JPEG, PNG, WebP).\n\n"
            "В группах упомяните меня в подписи, ответьте мне фотографией или ответьте /lookalike на фото.\n\n"
            "⚙️ /settings — выберите, с кем вас сравнивать: с женщинами, с мужчинами или со всеми.\n\n"
            "🔒 Фотографии обрабатываются в памяти и нигде не сохраняются."
        ),
        "cmd_start": "Что умеет бот",
        "cmd_help": "Советы для хорошего селфи",
        "cmd_lookalike": "Ответом на фото: на кого похож?",
        "cmd_settings": "С кем сравнивать: женщины, мужчины или все",
        "settings": (
            "⚙️ <b>С кем вас сравнивать?</b>\n\n"
            "«✨ Как на моём фото» — знаменитости того же пола, что и лицо на фото. Выберите вариант — "
            "я запомню его для всех ваших фото, здесь и в группах.\n\n"
            "🔒 Я храню только ваш выбор — и никаких догадок о вас."
        ),
        "match_auto": "✨ Как на моём фото",
        "match_F": "👩 Женщины",
        "match_M": "👨 Мужчины",
        "match_any": "🌍 Все",
        "match_saved": "Сохранено! Сравнивать с: {choice}",
        "match_not_saved": "Извините, сейчас не получилось сохранить ваш выбор. Попробуйте позже.",
        "look_striking": "🤩 Поразительное сходство! Вы похожи на <b>{name}</b> — {similarity}",
        "look_strong": "😮 Вы очень похожи на <b>{name}</b> — {similarity}",
        "look_clear": "🙂 Вы похожи на <b>{name}</b> — {similarity}",
        "look_hint": "😉 Что-то общее у вас есть: <b>{name}</b> — {similarity}",
        "look_unique": "🦄 Вы неповторимы! Ближе всех к вам: <b>{name}</b> — {similarity}",
        "face_line": "{n}. <b>{name}</b> — {similarity}",
        "faces_header": "Я нашёл лиц: {count}",
        "faces_more": "Нажмите номер, чтобы увидеть карточку этого лица.",
        "faces_limit": "(пронумерованы {limit} самых крупных)",
        "more_button": "Ещё похожие",
        "blend_button": "🎭 Смешать",
        "blend_caption": "Вы → <b>{name}</b>",
        "no_landmarks": "🙈 Не получилось точно разметить {whose}, чтобы смешать. Попробуйте более чёткое фото анфас.",
        "your_face": "ваше лицо",
        "celebrity_face": "лицо знаменитости",
        "more_header": "Ещё похожие:",
        "no_face": "🤔 Не нашёл лица на этом фото. Попробуйте селфи при хорошем свете, лицом к камере.",
        "not_an_image": "🖼 Не получилось открыть изображение. Пришлите фото в JPEG, PNG или WebP.",
        "too_large": "📏 Изображение слишком большое. Пришлите фото поменьше (до 20 МБ).",
        "file_too_big": "📦 Файл больше 20 МБ — Telegram не даёт ботам скачивать такие. Пришлите его как фото.",
        "not_a_photo": "🙂 Я умею читать только фотографии. Пришлите селфи как фото или как файл-изображение.",
        "sticker": "😄 Отличный стикер! Но мне нужна настоящая фотография лица.",
        "video": "🎬 Видео и GIF я пока не смотрю — пришлите фотографию.",
        "busy": "⏳ Сейчас очень много запросов. Попробуйте через минуту.",
        "failed": "😔 Извините, с вашим фото что-то пошло не так. Попробуйте ещё раз.",
        "still_trying": "🐌 Telegram сейчас отвечает медленно. Я всё ещё занимаюсь вашим фото — ответ уже в пути.",
        "slow_down": "🐢 Очень много фотографий! Подождите минуту, прежде чем присылать ещё.",
        "reply_to_photo": "Ответьте /lookalike на фотографию, и я скажу, на кого она похожа.",
        "expired": "Этот результат устарел — пришлите фото ещё раз.",
        "not_yours": "Эти кнопки — для того, кто прислал фото.",
        "invalid_button": "Эта кнопка больше не работает.",
        "thanks": "Спасибо за отзыв!",
        "not_saved": "Извините, сейчас не получилось сохранить ваш голос.",
        "admins_only": "Эта команда — для операторов бота.",
    },
}

DEFAULT_LANGUAGE = "en"


def language(code: str | None) -> str:
    """``ru``, ``ru-RU`` → ``ru``; anything we have no texts for → English."""
    base = (code or "").split("-")[0].lower()
    return base if base in TEXTS else DEFAULT_LANGUAGE


def text(lang: str, key: str, **values: object) -> str:
    return TEXTS[language(lang)][key].format(**values)


# The caption's words by band of the %, highest first. The % is a percentile among ordinary people, so "3%" is
# the truth for most strangers: the lowest band says what that means (nobody in the catalog is close) kindly.
LIKENESS_BANDS = ((90.0, "look_striking"), (70.0, "look_strong"), (40.0, "look_clear"), (15.0, "look_hint"))


def likeness(similarity: float) -> str:
    """The text key of the caption's first line for a match of this % (the number itself is shown unchanged)."""
    return next((key for floor, key in LIKENESS_BANDS if similarity >= floor), "look_unique")


def percent(similarity: float) -> str:
    """87.4 → "87%"; a near-certain match stays below 100 unless it really is (rounding up would overclaim)."""
    return f"{min(int(similarity + 0.5), 99) if similarity < 99.95 else 100}%"
