"""Bounded cache of message states, least recently used first out. Pure."""

from __future__ import annotations

from collections import OrderedDict

from processors.state import MessageState


class StateCache:
    """LRU of states across partitions. A partition's entries are dropped when it is assigned or
    revoked, because another consumer may have merged events for its messages meanwhile.

    Keyed by message id alone (a message has one partition; a key tuple per entry would cost ~70 bytes
    of a million-message cache's memory), with each partition's ids kept for ``get`` and drops."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self._lru: OrderedDict[str, MessageState] = OrderedDict()
        self._ids_by_partition: dict[int, set[str]] = {}

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, partition: int, message_id: str) -> MessageState | None:
        state = self._lru.get(message_id)
        if state is None or message_id not in self._ids_by_partition.get(partition, ()):
            return None
        self._lru.move_to_end(message_id)
        return state

    def put(self, partition: int, state: MessageState) -> None:
        message_id = state.message_id
        if message_id in self._lru:  # it may have been cached under another partition (repartitioned)
            for ids in self._ids_by_partition.values():
                ids.discard(message_id)
        self._lru[message_id] = state
        self._lru.move_to_end(message_id)
        self._ids_by_partition.setdefault(partition, set()).add(message_id)
        while len(self._lru) > self.max_messages:
            old_id, _ = self._lru.popitem(last=False)
            for ids in self._ids_by_partition.values():
                ids.discard(old_id)

    def drop_partitions(self, partitions: set[int]) -> None:
        for partition in partitions:
            for message_id in self._ids_by_partition.pop(partition, set()):
                del self._lru[message_id]
