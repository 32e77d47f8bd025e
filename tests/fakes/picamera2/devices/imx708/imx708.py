"""Mirrors ``picamera2/devices/imx708/imx708.py`` (0.3.36): ``IMX708``, the helper that switches the
Camera Module 3 sensor's own HDR mode.

Upstream finds the camera's libcamera ``Id`` through ``Picamera2.global_camera_info()`` (by ``Num``
when ``camera_num`` is given, else the first camera whose ``Model`` is exactly ``"imx708"``), then scans
``/sys/class/video4linux/v4l-subdev0..15`` for the node driven by the ``imx708`` kernel module whose
device-tree node contains that Id, opens ``/dev/v4l-subdevN`` and sets the V4L2 control
``HDR_CTRL_ID`` (0x009A0915, V4L2_CID_WIDE_DYNAMIC_RANGE) with VIDIOC_S_CTRL. An ``OSError`` from the
ioctl is only printed; either way it then calls ``Picamera2._cm.reset()`` so that the next
``Picamera2`` sees the new sensor modes.

Simulated here (no sysfs, no ioctl): the subdev node is a ``_sim.SubdevNode`` (any ``imx708*`` model
has one, other sensors none) and the HDR control is ``_sim``'s per-camera flag. Like the imx708
driver, which grabs the control while streaming (``__v4l2_ctrl_grab(hdr_mode, enable)`` in
``imx708_set_stream``), setting it while a ``Picamera2`` for that camera is started fails with EBUSY:
upstream prints ``IMX708: Unable to set HDR control in the device node: [Errno 16] Device or resource
busy`` and does not raise, and the flag stays as it was.
"""

from picamera2 import Picamera2, _sim

HDR_CTRL_ID = 0x009A0915


class IMX708:
    """The IMX708 (Camera Module 3) sensor helper; see the module docstring."""

    def __init__(self, camera_num=None):
        """Find camera ``camera_num`` (or the first ``"imx708"`` model) and open its sensor subdev node.

        Raises ``RuntimeError('IMX708: Requested IMX708 camera device not be found')`` when there is no
        such camera and ``RuntimeError('IMX708: Requested camera v4l2 device node not found')`` when its
        sensor is not driven by the imx708 driver (upstream's exact messages).
        """
        self.device_fd = None

        camera_info = Picamera2.global_camera_info()
        if camera_num is None:
            camera_id = next((c['Id'] for c in camera_info if c['Model'] == 'imx708'), None)
        else:
            camera_id = next((c['Id'] for c in camera_info if c['Num'] == camera_num), None)

        if camera_id is None:
            raise RuntimeError('IMX708: Requested IMX708 camera device not be found')

        self.device_fd = _sim.open_imx708_subdev(camera_id, camera_info)

        if self.device_fd is None:
            raise RuntimeError('IMX708: Requested camera v4l2 device node not found')

    def __del__(self):
        self.close()

    def close(self):
        """Close the subdev node (idempotent)."""
        if self.device_fd:
            self.device_fd.close()
            self.device_fd = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, tb):
        self.close()

    def set_sensor_hdr_mode(self, enable: bool):
        """
        Set the sensor HDR mode (True/False) on the IMX708 device.

        Note that after changing the HDR mode, you must
        re-initialise the Picamera2 object to cache the updated sensor modes.
        """
        if self.device_fd is None:  # upstream's fcntl.ioctl(None, ...) raises this TypeError
            raise TypeError("argument must be an int, or have a fileno() method.")
        try:
            _sim.set_sensor_hdr(self.device_fd.camera_num, int(enable))
        except OSError as err:
            print(f'IMX708: Unable to set HDR control in the device node: {err}')

        # Must reset the camera manager so that cached sensor modes can be refreshed.
        Picamera2._cm.reset()
