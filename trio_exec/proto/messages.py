"""All message classes, re-exported, and the registration of their special converter hooks.

Above the message modules and below the converter (`convert.py` calls `register_message_hooks`
for each converter it builds)."""

from __future__ import annotations

import cattrs

from trio_exec.proto import env_messages, fs_messages, process_messages
from trio_exec.proto.env_messages import *  # noqa: F403
from trio_exec.proto.fs_messages import *  # noqa: F403
from trio_exec.proto.process_messages import *  # noqa: F403
from trio_exec.proto.session_messages import *  # noqa: F403


def register_message_hooks(conv: cattrs.Converter) -> None:
    env_messages.register_hooks(conv)
    fs_messages.register_hooks(conv)
    process_messages.register_hooks(conv)
