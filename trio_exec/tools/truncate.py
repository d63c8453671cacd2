"""Token-budget truncation of tool output, as codex presents it to the model.

Rules (observed on the codex 0.169 and 0.171 clients, byte for byte):
- A token is approximated as 4 bytes of UTF-8: `approx_tokens(text) = ceil(len(bytes) / 4)`.
- Text within `max_tokens * 4` bytes is returned unchanged.
- Longer text keeps its first `budget // 2` bytes and its last `budget - budget // 2` bytes
  (cut back to whole characters) around the marker `…N tokens truncated…`, where N is
  `ceil((len - budget) / 4)`; the whole is preceded by
  `Warning: truncated output (original token count: T)\\nTotal output lines: L\\n\\n`.
"""

from __future__ import annotations

BYTES_PER_TOKEN = 4


def approx_tokens(text: str) -> int:
    return -(-len(text.encode()) // BYTES_PER_TOKEN)


def _line_count(text: str) -> int:
    """Lines as Rust's `str::lines` counts them: a final newline does not open a new line."""
    return len(text.splitlines())


def truncate_middle(text: str, max_tokens: int) -> str:
    """The head and the tail of `text` within `max_tokens`, with the marker between them."""
    data = text.encode()
    budget = max(max_tokens, 0) * BYTES_PER_TOKEN
    if len(data) <= budget and budget > 0:
        return text
    removed = -(-(len(data) - budget) // BYTES_PER_TOKEN)
    marker = f"…{removed} tokens truncated…"
    if budget == 0:
        return marker
    head_budget = budget // 2
    tail_start = len(data) - (budget - head_budget)
    head = data[:head_budget].decode("utf-8", errors="ignore")  # drops a cut character
    tail = data[tail_start:]
    while tail and (tail[0] & 0xC0) == 0x80:  # start on a character boundary
        tail = tail[1:]
    return head + marker + tail.decode("utf-8", errors="replace")


def truncate_output(text: str, max_tokens: int) -> str:
    """`text` as the model sees it under a budget of `max_tokens`."""
    if len(text.encode()) <= max(max_tokens, 0) * BYTES_PER_TOKEN:
        return text
    return (
        f"Warning: truncated output (original token count: {approx_tokens(text)})\n"
        f"Total output lines: {_line_count(text)}\n\n{truncate_middle(text, max_tokens)}"
    )
