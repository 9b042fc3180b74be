"""Fixed-size ring buffers for recorded traces (memory never grows with run length)."""
from __future__ import annotations

import numpy as np

__all__ = ["RingBuffer"]


class RingBuffer:
    """The last ``capacity`` samples of an array-valued signal.

    Parameters
    ----------
    capacity : int
        Number of samples kept.
    shape : tuple
        Shape of one sample.

    Notes
    -----
    ``total`` counts every sample ever appended, so a consumer (the dashboard) can ask for
    exactly the samples it has not seen yet with :meth:`since`.
    """

    def __init__(self, capacity, shape=()):
        self.capacity = int(capacity)
        self.shape = tuple(shape)
        self._data = np.zeros((self.capacity,) + self.shape)
        self.total = 0

    @property
    def data(self):
        """The storage array, shape ``(capacity, *shape)``: sample number ``i`` (counting
        from 0 over the whole run) lives in row ``i % capacity``; the next sample goes to
        row ``total % capacity``. Writers that fill rows directly (the compiled kernel)
        advance :attr:`total` themselves."""
        return self._data

    def append(self, value):
        self._data[self.total % self.capacity] = value
        self.total += 1

    def extend(self, values):
        """Append many samples (first axis) at once."""
        values = np.asarray(values)
        n = len(values)
        if n >= self.capacity:
            values = values[-self.capacity:]
            start = (self.total + n - self.capacity) % self.capacity
            m = self.capacity
        else:
            start, m = self.total % self.capacity, n
        end = start + m
        if end <= self.capacity:
            self._data[start:end] = values
        else:
            k = self.capacity - start
            self._data[start:] = values[:k]
            self._data[:end - self.capacity] = values[k:]
        self.total += n

    def __len__(self):
        return min(self.total, self.capacity)

    def last(self, n=None):
        """The last ``n`` samples (default: all kept), oldest first, as a new array."""
        kept = len(self)
        n = kept if n is None else max(0, min(int(n), kept))
        if n == 0:
            return self._data[:0].copy()
        end = self.total % self.capacity
        start = end - n
        if start >= 0:                      # contiguous: one slice (no index array)
            return self._data[start:end].copy()
        return np.concatenate([self._data[start:], self._data[:end]])

    def samples(self, start, stop, step=1):
        """Samples number ``start, start + step, …`` below ``stop`` (numbers counted over the
        whole run, as :attr:`total` counts them), as a new array: one strided slice of the
        storage (an index where it wraps) where ``last(total - start)`` and a selection of
        its rows would copy twice.

        Raises ``ValueError`` if a requested sample is no longer kept (or not yet taken)."""
        step, start, stop = int(step), int(start), int(stop)
        if step < 1:
            raise ValueError(f"step must be ≥ 1, not {step}")
        if start < self.total - len(self) or stop > self.total:
            raise ValueError(f"samples {start}..{stop - 1} are not all kept "
                             f"(kept: {self.total - len(self)}..{self.total - 1})")
        first = start % self.capacity
        end = first + (stop - start)
        if end <= self.capacity:            # not wrapped: a strided slice (no index array)
            return self._data[first:max(first, end):step].copy()
        return self._data[np.arange(start, stop, step) % self.capacity]

    def since(self, total_seen):
        """Samples appended after the consumer had seen ``total_seen`` of them."""
        return self.last(self.total - int(total_seen))

    def clear(self):
        self.total = 0
        self._data[...] = 0.0

    @property
    def nbytes(self):
        return self._data.nbytes
