"""Mirrors the part of ``picamera2/outputs/fileoutput.py`` (0.3.36) that ``start_encoder`` needs when
given a file name: a ``FileOutput`` that writes every frame to a file or file-like object."""

import io

from .output import Output


class FileOutput(Output):
    def __init__(self, file=None, pts=None, split=None):
        super().__init__(pts=pts)
        self.fileoutput = open(file, "wb") if isinstance(file, str) else file
        self._firstframe = True

    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        if audio:
            raise RuntimeError("FileOutput does not support audio")
        if self.recording and self.fileoutput is not None:
            self.fileoutput.write(frame)
            if not isinstance(self.fileoutput, io.BytesIO):
                self.fileoutput.flush()
            self.outputtimestamp(timestamp)

    def stop(self):
        super().stop()
        if self.fileoutput is not None and not isinstance(self.fileoutput, io.BytesIO):
            self.fileoutput.close()
