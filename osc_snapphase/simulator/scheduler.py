#   Licensed under the Apache License, Version 2.0 (the "License"); you may
#   not use this file except in compliance with the License. You may obtain
#   a copy of the License at
#
#        http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#   WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#   License for the specific language governing permissions and limitations
#   under the License.

"""A single timer thread that runs callbacks at monotonic deadlines."""

import heapq
import itertools
import logging
import threading
import time

LOG = logging.getLogger(__name__)


class Timer:
    """Handle of one scheduled callback; cancel() stops it from running."""

    def __init__(self, due, func, args):
        self.due = due
        self.func = func
        self.args = args
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class Scheduler:
    """Run callbacks at their due time on one daemon thread."""

    def __init__(self):
        self._heap = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name='sim-timers', daemon=True)
        self._thread.start()

    def call_later(self, delay, func, *args):
        timer = Timer(time.monotonic() + max(0.0, delay), func, args)
        with self._cond:
            heapq.heappush(self._heap, (timer.due, next(self._seq), timer))
            self._cond.notify()
        return timer

    def pending(self):
        with self._cond:
            return sum(1 for _d, _s, t in self._heap if not t.cancelled)

    def stop(self):
        with self._cond:
            self._stopped = True
            self._heap = []
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(2)

    def _run(self):
        while True:
            with self._cond:
                while not self._stopped:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopped:
                    return
                _due, _seq, timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            try:
                timer.func(*timer.args)
            except Exception:
                LOG.exception('Timer callback %s failed', timer.func)
