"""Bounded, per-partition cache of message states. Pure."""

from __future__ import annotations

from collections import OrderedDict

from processors.state import MessageState


class StateCache:
    """LRU of states per partition; a partition's entries are dropped when it is assigned or revoked,
    because another consumer may have merged events for its messages meanwhile."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self._by_partition: dict[int, OrderedDict[str, MessageState]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def get(self, partition: int, message_id: str) -> MessageState | None:
        entries = self._by_partition.get(partition)
        if entries is None or message_id not in entries:
            return None
        entries.move_to_end(message_id)
        return entries[message_id]

    def put(self, partition: int, state: MessageState) -> None:
        entries = self._by_partition.setdefault(partition, OrderedDict())
        if state.message_id not in entries:
            self._size += 1
        entries[state.message_id] = state
        entries.move_to_end(state.message_id)
        while self._size > self.max_messages:
            self._evict_one()

    def drop_partitions(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._size -= len(self._by_partition.pop(partition, {}))

    def _evict_one(self) -> None:
        largest = max(self._by_partition.values(), key=len)
        largest.popitem(last=False)
        self._size -= 1
