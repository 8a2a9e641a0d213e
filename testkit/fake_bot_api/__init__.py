"""A fake Telegram Bot API HTTP server for end-to-end tests and benchmarks, serving only what the bot uses.

The real bot (python-telegram-bot) talks to it over 127.0.0.1 as it talks to Telegram, so httpx, PTB's request
encoding, retries, rate limiting and timeouts are all exercised::

    with FakeBotApi() as api:                    # a random port on 127.0.0.1, served by a daemon thread
        app = api.application_builder().build()  # token, base_url and base_file_url set
        api.send_photo(42, make_image())         # a user sends a photo (queued for getUpdates)
        [card] = api.wait_for_sent(chat_id=42)   # blocks until the bot answered; await the *_async twins instead
                                                 # when the bot runs in the caller's event loop

Served: getMe, getUpdates, setWebhook, deleteWebhook, setMyCommands, getFile and downloads, sendMessage, sendPhoto,
sendAnimation, sendVideo, sendDocument, sendChatAction, editMessageCaption, editMessageReplyMarkup and
answerCallbackQuery; other methods get 404 and a wrong token 401, like Telegram.  HTML is the only ``parse_mode``:
messages hold the plain text and entities, markup Telegram refuses gets 400 "can't parse entities".  Nothing is
logged: request lines contain the token.

``FakeBotApi`` (api.py) is composed of one mixin per job over the shared ``State`` (state.py): ``Lifecycle``,
``Content`` (users, files, updates), ``UserActions`` (users.py), ``History`` (what the bot did), ``Waiting``,
``Faults``, ``Webhooks``, ``Dispatch`` (HTTP) and ``BotMethods``; text.py, decoding.py and images.py hold
Telegram's text rules, PTB's request encodings and pictures.
"""

from testkit.fake_bot_api.api import FakeBotApi
from testkit.fake_bot_api.images import make_image
from testkit.fake_bot_api.model import Origin, RateStats, Request, UploadedFile, WaitTimeout

__all__ = ["FakeBotApi", "Origin", "RateStats", "Request", "UploadedFile", "WaitTimeout", "make_image"]
