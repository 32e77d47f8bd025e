"""Mirrors ``picamera2/job.py`` (0.3.36): a ``Job`` is a list of functions run by the camera event
loop, one per frame until each returns ``(True, result)``; callers wait on its Future."""

from concurrent.futures import CancelledError, Future

__all__ = ["CancelledError", "Job"]


class Job:
    def __init__(self, functions, signal_function=None):
        self._functions = functions
        self._future = Future()
        self._future.set_running_or_notify_cancel()
        self._signal_function = signal_function
        self._result = None
        self.calls = 0

    def execute(self) -> bool:
        assert self._functions, "Job already completed!"
        try:
            while self._functions:
                done, result = self._functions[0]()
                self.calls += 1
                if not done:
                    break
                self._functions.pop(0)
            if not self._functions:
                self._result = result
        except Exception as e:
            self._future.set_exception(e)
            self._functions = []
        return not self._functions

    def signal(self) -> None:
        assert not self._functions, "Job not finished!"
        if not self._future.done():
            self._future.set_result(self._result)
        if self._signal_function:
            self._signal_function(self)

    def get_result(self, timeout=None):
        return self._future.result(timeout=timeout)

    def cancel(self) -> None:
        if not self._future.done():
            self._future.set_exception(CancelledError())
