"""Bounded cache of message states, least recently used first out. Pure."""

from __future__ import annotations

from collections import OrderedDict

from processors.state import MessageState


class StateCache:
    """LRU of states across partitions. A partition's entries are dropped when it is assigned or
    revoked, because another consumer may have merged events for its messages meanwhile."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self._lru: OrderedDict[tuple[int, str], MessageState] = OrderedDict()
        self._ids_by_partition: dict[int, set[str]] = {}

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, partition: int, message_id: str) -> MessageState | None:
        key = (partition, message_id)
        state = self._lru.get(key)
        if state is not None:
            self._lru.move_to_end(key)
        return state

    def put(self, partition: int, state: MessageState) -> None:
        key = (partition, state.message_id)
        self._lru[key] = state
        self._lru.move_to_end(key)
        self._ids_by_partition.setdefault(partition, set()).add(state.message_id)
        while len(self._lru) > self.max_messages:
            (old_partition, old_id), _ = self._lru.popitem(last=False)
            self._ids_by_partition[old_partition].discard(old_id)

    def drop_partitions(self, partitions: set[int]) -> None:
        for partition in partitions:
            for message_id in self._ids_by_partition.pop(partition, set()):
                del self._lru[(partition, message_id)]
