"""A real RTSP server for one publishing session (``ffmpeg -rtsp_flags listen``), PyAV decoding, and
ffprobe's view of a recording's timestamps."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pi_camera_service.sources.base import FRAME_GAP_S
from tests.support.net import port_listening_or_accepted, stop_process, wait_until


@dataclass
class Decoded:
    """What an RTSP receiver recorded: decodable frames, their size and codec."""

    frames: int
    width: int
    height: int
    codec: str


def _await_listening(proc: subprocess.Popen, port: int, output, timeout: float = 30.0) -> None:
    """Wait until the ``ffmpeg -rtsp_flags listen`` process ``proc`` listens on ``port``, without
    connecting (a probe connection would be taken as the session). ffmpeg closes its listening socket
    once it accepts the publisher, which a publisher retrying fast does within a poll interval, so an
    accepted connection counts too.

    Raises:
        AssertionError: ffmpeg exited first (with the end of ``output()``, its log), or ``timeout`` s passed.
    """
    wait_until(lambda: port_listening_or_accepted(port) or proc.poll() is not None, timeout, 0.02,
               message=f"ffmpeg listening on {port}")
    if proc.poll() is not None:
        raise AssertionError(f"ffmpeg exited ({proc.returncode}) before listening on {port}: {output()[-500:]}")


class RtspReceiver:
    """A real RTSP server for one publishing session: ``ffmpeg -rtsp_flags listen`` recording to a file.

    It accepts the ANNOUNCE/SETUP/RECORD that MediaMTX would accept (REFERENCE.md) and exits when the
    publisher disconnects.
    """

    def __init__(self, port: int, out: Path) -> None:
        self.port = port
        self.out = out
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RtspReceiver":
        """Start ffmpeg and wait until it listens (:func:`_await_listening`); the old recording is removed first."""
        if self.out.exists():
            self.out.unlink()
        self.proc = subprocess.Popen(
            [
                "ffmpeg", "-nostdin", "-v", "error", "-y",
                "-rtsp_flags", "listen", "-i", f"rtsp://127.0.0.1:{self.port}/cam",
                "-c", "copy", "-f", "matroska", str(self.out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _await_listening(self.proc, self.port, lambda: self.proc.stderr.read().decode(errors="replace"))
        return self

    def stop(self) -> Decoded:
        """Stop gracefully (SIGINT lets ffmpeg finish the file) and decode what it recorded."""
        stop_process(self.proc, signal.SIGINT, 10)
        return decode(self.out)

    def kill(self) -> None:
        """SIGKILL: the RTSP server dies mid-stream, as a crashed MediaMTX would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def decode(path: Path) -> Decoded:
    """Decode every video frame of ``path`` with PyAV (frames that fail to decode are not counted)."""
    import av

    if not path.exists() or path.stat().st_size == 0:
        return Decoded(0, 0, 0, "")
    frames = 0
    width = height = 0
    codec = ""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            codec = stream.codec_context.name
            for frame in container.decode(stream):
                frames += 1
                width, height = frame.width, frame.height
    except Exception:  # noqa: BLE001 - a truncated tail after SIGKILL; keep what decoded
        pass
    return Decoded(frames, width, height, codec)


class WarningReceiver:
    """``ffmpeg -rtsp_flags listen`` recording to Matroska with warnings logged (``-v warning``)."""

    def __init__(self, port: int, out: Path) -> None:
        self.port, self.out, self.log = port, out, out.with_suffix(".log")

    def __enter__(self) -> "WarningReceiver":
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-hide_banner", "-v", "warning", "-y", "-rtsp_flags", "listen",
             "-i", f"rtsp://127.0.0.1:{self.port}/cam", "-c", "copy", "-f", "matroska", str(self.out)],
            stdout=subprocess.DEVNULL, stderr=self._log,
        )
        try:
            _await_listening(self.proc, self.port, lambda: self.log.read_text(errors="replace"))
        except AssertionError:
            self._log.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        stop_process(self.proc, signal.SIGINT, 15)
        self._log.close()

    def warnings(self) -> list[str]:
        """ffmpeg's non-empty log lines (warnings and errors) so far."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]


def probe(path: Path) -> tuple[list[float], list[str]]:
    """(video packet PTS in s, ffprobe's warning lines) of a recording."""
    r = subprocess.run(
        ["ffprobe", "-v", "warning", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
         "-of", "json", str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    packets = json.loads(r.stdout or "{}").get("packets", [])
    return [float(p["pts_time"]) for p in packets if p.get("pts_time") not in (None, "N/A")], \
        [line for line in r.stderr.splitlines() if line.strip()]


def gaps(pts: list[float]) -> tuple[int, float]:
    """(intervals over FRAME_GAP_S, largest interval s) between consecutive PTS."""
    intervals = np.diff(np.sort(np.asarray(pts))) if len(pts) > 1 else np.zeros(0)
    return int((intervals > FRAME_GAP_S).sum()), float(intervals.max(initial=0.0))
