"""Software image adjustments and lens correction (pi_camera_service.imaging) on real and synthetic frames."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import av
import cv2
import numpy as np
import pytest

from pi_camera_service import imaging
from pi_camera_service.frames import i420_planes, i420_shape
from pi_camera_service.imaging import FrameProcessor, ImageAdjust, LensModel, mean_luma
from tests.support.paths import SAMPLE

W, H = 640, 480


def decode_frame(width: int, height: int, index: int = 10) -> np.ndarray:
    """Frame ``index`` of the bundled carphone video scaled to ``width`` x ``height`` px, I420."""
    with av.open(str(SAMPLE)) as container:
        for i, decoded in enumerate(container.decode(container.streams.video[0])):
            if i == index:
                return decoded.reformat(width=width, height=height, format="yuv420p").to_ndarray()
    raise AssertionError("sample video too short")


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    out = decode_frame(W, H)
    out.flags.writeable = False  # published frames are shared read-only: processing must not write
    return out


def planes(i420: np.ndarray, w: int = W, h: int = H) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, u, v = i420_planes(i420, w, h)
    return y.astype(np.float64), u.astype(np.float64), v.astype(np.float64)


def process(i420: np.ndarray, w: int = W, h: int = H, **kwargs) -> np.ndarray:
    return FrameProcessor(w, h, ImageAdjust(**kwargs)).process(i420)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def laplacian_var(y: np.ndarray) -> float:
    return float(cv2.Laplacian(y, cv2.CV_64F).var())


# ---------------------------------------------------------------------------------------------- identity


def test_identity_returns_the_input_object(frame):
    adjust = ImageAdjust()
    assert adjust.is_identity
    processor = FrameProcessor(W, H, adjust)
    assert processor.is_identity
    assert processor.process(frame) is frame
    assert not ImageAdjust(brightness=0.01).is_identity
    assert not ImageAdjust(roi=(0, 0, 1, 0.5)).is_identity
    assert not ImageAdjust(lens=LensModel.camera_module_3_wide()).is_identity


ALL_SETTINGS = {
    "brightness": 0.1,
    "contrast": 1.5,
    "saturation": 1.5,
    "sharpness": 3.0,
    "roi": (0.1, 0.1, 0.8, 0.8),
    "lens": LensModel.camera_module_3_wide(),
}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"brightness": 0.2},
        {"saturation": 0.0},
        {"sharpness": 4.0},
        {"sharpness": 0.0},
        {"roi": (0.25, 0.25, 0.5, 0.5)},
        {"lens": LensModel.camera_module_3_wide()},
        ALL_SETTINGS,
    ],
)
def test_input_is_never_modified_and_output_is_new(frame, kwargs):
    writable = frame.copy()
    before = frame.copy()
    out = process(writable, **kwargs)
    assert out is not writable and not np.shares_memory(out, writable)
    assert out.shape == frame.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(writable, before)
    process(frame, **kwargs)  # read-only input works


# ------------------------------------------------------------------------------- brightness / contrast


def test_brightness_shifts_mid_grey_luma_by_255_times_brightness(frame):
    y, u, v = planes(frame)
    up = planes(process(frame, brightness=0.2))
    down = planes(process(frame, brightness=-0.2))
    mid = (y >= 60) & (y <= 190)  # away from clipping either way
    assert mid.mean() > 0.3
    assert (up[0] - y)[mid].mean() == pytest.approx(51, abs=0.6)
    assert (down[0] - y)[mid].mean() == pytest.approx(-51, abs=0.6)
    assert up[0].mean() > y.mean() + 40 > y.mean() > down[0].mean() + 40
    np.testing.assert_array_equal(up[1], u)  # chroma untouched
    np.testing.assert_array_equal(down[2], v)


def test_contrast_spreads_luma_about_mid_grey(frame):
    y = planes(frame)[0]
    high = planes(process(frame, contrast=2.0))[0]
    low = planes(process(frame, contrast=0.5))[0]
    assert high.std() > 1.5 * y.std()
    assert low.std() < 0.6 * y.std()
    flat = planes(process(frame, contrast=0.0))[0]
    assert np.all(flat == 128)


@pytest.mark.parametrize("brightness", [-0.5, -0.1, 0.0, 0.1, 0.5])
@pytest.mark.parametrize("contrast", [0.5, 1.0, 1.5, 2.0])
def test_luma_lut_matches_libcamera_16_bit_curve(brightness, contrast):
    # libcamera contrast.cpp applyManualContrast on the 16-bit curve, brightness passed as b * 65536.
    y16 = np.arange(256) * 65535 / 255
    out16 = np.clip((y16 - 32768) * contrast + 32768 + brightness * 65536, 0, 65535)
    expected = out16 * 255 / 65535
    lut = imaging.luma_lut(brightness, contrast).astype(np.float64)
    assert np.abs(lut - expected).max() <= 1.0


# --------------------------------------------------------------------------------------------- saturation


def test_saturation_zero_is_greyscale_and_two_spreads_chroma(frame):
    y, u, v = planes(frame)
    grey = planes(process(frame, saturation=0.0))
    assert np.all(grey[1] == 128) and np.all(grey[2] == 128)
    np.testing.assert_array_equal(grey[0], y)
    vivid = planes(process(frame, saturation=2.0))
    assert vivid[1].std() > 1.8 * u.std() and vivid[2].std() > 1.8 * v.std()
    assert np.abs(vivid[1] - 128).mean() > 1.8 * np.abs(u - 128).mean()
    np.testing.assert_array_equal(vivid[0], y)


# ---------------------------------------------------------------------------------------------- sharpness


def test_sharpness_above_one_sharpens_and_zero_blurs(frame):
    y0 = i420_planes(frame, W, H)[0]
    sharp = i420_planes(process(frame, sharpness=4.0), W, H)
    soft = i420_planes(process(frame, sharpness=0.0), W, H)
    assert laplacian_var(sharp[0]) > 1.5 * laplacian_var(y0)
    assert laplacian_var(soft[0]) < 0.7 * laplacian_var(y0)
    np.testing.assert_array_equal(sharp[1], i420_planes(frame, W, H)[1])
    # 0 is fully the blurred version
    np.testing.assert_allclose(soft[0], cv2.GaussianBlur(y0, (3, 3), 0), atol=1)
    # monotonic in the setting
    assert laplacian_var(i420_planes(process(frame, sharpness=16.0), W, H)[0]) > laplacian_var(sharp[0])
    assert laplacian_var(i420_planes(process(frame, sharpness=0.5), W, H)[0]) > laplacian_var(soft[0])


def test_concurrent_process_calls_share_a_processor_safely(frame):
    processor = FrameProcessor(W, H, ImageAdjust(sharpness=5.0, brightness=0.1))
    expected = processor.process(frame)
    barrier = threading.Barrier(4)

    def run(_):
        barrier.wait()
        return [processor.process(frame) for _ in range(20)]

    with ThreadPoolExecutor(4) as pool:
        for outs in pool.map(run, range(4)):
            for out in outs:
                np.testing.assert_array_equal(out, expected)


# ----------------------------------------------------------------------------------------------------- roi


def test_roi_zooms_into_the_centre(frame):
    out = process(frame, roi=(0.25, 0.25, 0.5, 0.5))
    assert out.shape == frame.shape
    y_in, u_in, _ = i420_planes(frame, W, H)
    y_out, u_out, _ = i420_planes(out, W, H)
    # the output's centre half is a 2x upscale of the input's centre quarter
    centre_in = y_in[H * 3 // 8 : H * 5 // 8, W * 3 // 8 : W * 5 // 8]
    upscaled = cv2.resize(centre_in, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    centre_out = y_out[H // 4 : H * 3 // 4, W // 4 : W * 3 // 4]
    assert corr(centre_out, upscaled) > 0.99
    assert corr(centre_out, y_in[H // 4 : H * 3 // 4, W // 4 : W * 3 // 4]) < 0.9
    assert corr(y_out, y_in) < 0.8
    # chroma is zoomed the same way (stays aligned with luma)
    expected_u = cv2.resize(
        u_in[H // 8 : H * 3 // 8, W // 8 : W * 3 // 8], (W // 2, H // 2), interpolation=cv2.INTER_LINEAR
    )
    np.testing.assert_array_equal(u_out, expected_u)


def test_roi_crop_is_even_in_luma():
    for roi in [(0.1, 0.13, 0.5, 0.37), (0.333, 0.0, 0.667, 1.0), (0.999, 0.999, 0.001, 0.001), (0, 0, 1e-4, 1)]:
        x0, y0, cw, ch = imaging.roi_pixels(roi, W, H)
        assert all(v % 2 == 0 for v in (x0, y0, cw, ch)), roi
        assert cw >= 2 and ch >= 2 and x0 + cw <= W and y0 + ch <= H


@pytest.mark.parametrize(
    "roi",
    [
        (-0.1, 0, 0.5, 0.5),
        (0, -0.01, 0.5, 0.5),
        (0, 0, 0, 0.5),
        (0, 0, 0.5, -1),
        (0.6, 0, 0.5, 0.5),
        (0, 0.5, 1, 0.51),
        (0, 0, 1),
        (0, 0, float("nan"), 1),
        "abcd",
    ],
)
def test_invalid_roi_raises_value_error(roi):
    with pytest.raises(ValueError, match="roi"):
        ImageAdjust(roi=roi)


@pytest.mark.parametrize(
    "kwargs", [{"brightness": 1.5}, {"contrast": -1}, {"saturation": 33}, {"sharpness": 17}, {"contrast": float("nan")}]
)
def test_out_of_range_settings_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        ImageAdjust(**kwargs)


def test_bad_frames_and_sizes_raise_value_error(frame):
    processor = FrameProcessor(W, H, ImageAdjust(brightness=0.1))
    with pytest.raises(ValueError, match="I420"):
        processor.process(frame[:-2])
    with pytest.raises(ValueError, match="I420"):
        processor.process(frame.astype(np.float32))
    with pytest.raises(ValueError, match="even"):
        FrameProcessor(641, 480, ImageAdjust(brightness=0.1))


# ---------------------------------------------------------------------------------------------- operation order


def test_process_order_is_geometry_then_luts_then_sharpness(frame):
    combined = FrameProcessor(W, H, ImageAdjust(**ALL_SETTINGS)).process(frame)
    steps = [
        ImageAdjust(roi=ALL_SETTINGS["roi"], lens=ALL_SETTINGS["lens"]),
        ImageAdjust(brightness=ALL_SETTINGS["brightness"], contrast=ALL_SETTINGS["contrast"]),
        ImageAdjust(saturation=ALL_SETTINGS["saturation"]),
        ImageAdjust(sharpness=ALL_SETTINGS["sharpness"]),
    ]
    out = frame
    for adjust in steps:
        out = FrameProcessor(W, H, adjust).process(out)
    np.testing.assert_array_equal(combined, out)


# ----------------------------------------------------------------------------------------------------- lens


def test_camera_module_3_wide_estimate():
    lens = LensModel.camera_module_3_wide()
    assert lens.reference_size == (4608, 2592)
    assert lens.fx == lens.fy == pytest.approx(1964.29, abs=0.01)
    assert (lens.cx, lens.cy) == (2303.5, 1295.5)
    k1 = lens.distortion[0]
    assert k1 == pytest.approx(-0.0743, abs=1e-4)
    assert lens.distortion[1:] == (0.0, 0.0, 0.0, 0.0)
    # the sensor corner is seen at 60 deg off-axis: 120 deg diagonal field of view
    corner = np.array([[[-0.5, -0.5]]])  # outer edge of the top-left pixel
    xn = cv2.undistortPointsIter(
        corner,
        lens.camera_matrix,
        np.array(lens.distortion),
        None,
        None,
        (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12),
    ).reshape(2)
    assert math.degrees(math.atan(math.hypot(*xn))) == pytest.approx(60.0, abs=0.05)
    # distorted radius r (1 + k1 r^2) increases monotonically up to (and past) the corner ray
    r = np.linspace(0, math.tan(math.radians(62)), 1000)
    assert np.all(np.diff(r * (1 + k1 * r**2)) > 0)


def _edge_angles(lens: LensModel) -> np.ndarray:
    """Normalised coordinates of the outer pixel edges at mid-height/mid-width (field of view)."""
    w, h = lens.reference_size
    pts = np.array([[[-0.5, lens.cy]], [[w - 0.5, lens.cy]], [[lens.cx, -0.5]], [[lens.cx, h - 0.5]]])
    und = cv2.undistortPointsIter(
        pts,
        lens.camera_matrix,
        np.array(lens.distortion),
        None,
        None,
        (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12),
    )
    return und.reshape(4, 2)


def test_lens_scaled_keeps_the_field_of_view():
    lens = LensModel.camera_module_3_wide()
    ref = _edge_angles(lens)
    for w, h in [(1280, 720), (640, 360), (640, 480)]:
        small = lens.scaled(w, h)
        assert small.reference_size == (w, h)
        np.testing.assert_allclose(_edge_angles(small), ref, atol=1e-9)
    # a 4:3 centred crop (Raspberry Pi ISP behaviour): same vertical FoV, narrower horizontal, square px
    crop = lens.scaled(640, 480, crop_to_aspect=True)
    assert crop.fx == pytest.approx(crop.fy)
    assert (crop.cx, crop.cy) == pytest.approx((319.5, 239.5))
    angles = _edge_angles(crop)
    np.testing.assert_allclose(angles[2:, 1], ref[2:, 1], atol=1e-9)
    assert abs(angles[0, 0]) < abs(ref[0, 0]) * 0.8


def test_lens_model_validation():
    with pytest.raises(ValueError, match="fx"):
        LensModel(0, 1, 0, 0, (0, 0, 0, 0), (10, 10))
    with pytest.raises(ValueError, match="distortion"):
        LensModel(1, 1, 0, 0, (0, 0, 0), (10, 10))
    with pytest.raises(ValueError, match="reference_size"):
        LensModel(1, 1, 0, 0, (0, 0, 0, 0), (0, 10))
    # a distortion that folds back inside the frame is refused
    folded = LensModel(300, 300, 319.5, 239.5, (-0.5, 0, 0, 0, 0), (640, 480))
    with pytest.raises(ValueError):
        FrameProcessor(640, 480, ImageAdjust(lens=folded))


LW, LH = 640, 360  # 16:9, like the Camera Module 3 sensor


def _line_rows(y_plane: np.ndarray, row: float, cols: np.ndarray, half_band: int = 12) -> np.ndarray:
    """Per-column darkness-weighted centroid row of a dark line near ``row`` on a white background."""
    lo, hi = int(row) - half_band, int(row) + half_band + 1
    band = 255.0 - y_plane[lo:hi, cols].astype(np.float64)
    rows = np.arange(lo, hi)[:, None]
    return (band * rows).sum(0) / band.sum(0)


def test_lens_correction_straightens_lines():
    lens = LensModel.camera_module_3_wide().scaled(LW, LH)
    k, dist = lens.camera_matrix, np.array(lens.distortion)
    processor = FrameProcessor(LW, LH, ImageAdjust(lens=lens))
    new_k = processor.new_camera_matrix
    # horizontal lines, straight in the world (constant normalised y), drawn as the lens images them
    y_lines = [-0.55, -0.3, 0.25, 0.5]
    img = np.full(i420_shape(LW, LH), 128, np.uint8)
    y = img[:LH]
    y[:] = 255
    cols = np.arange(40, LW - 40)
    for yn in y_lines:
        xs = np.linspace(-1.6, 1.6, 800)
        pts = np.stack([xs, np.full_like(xs, yn), np.ones_like(xs)], 1)
        proj, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), k, dist)
        proj = proj.reshape(-1, 2)
        cv2.polylines(y, [np.round(proj * 16).astype(np.int32).reshape(-1, 1, 2)], False, 0, 3, cv2.LINE_AA, shift=4)
        # bent in the camera image (barrel distortion) ...
        inside = proj[(proj[:, 0] >= cols[0]) & (proj[:, 0] <= cols[-1]), 1]
        assert inside.max() - inside.min() > 5, yn
        assert np.abs(_line_rows(y, inside.mean(), cols, half_band=int(np.ptp(inside)) + 4) - inside.mean()).max() > 2
    out_y = i420_planes(processor.process(img), LW, LH)[0]
    for yn in y_lines:
        # ... straight, and where the new camera matrix puts it, once corrected
        expected = new_k[1, 1] * yn + new_k[1, 2]
        straight = _line_rows(out_y, expected, cols)
        assert np.abs(straight - expected).max() < 0.6, yn


def test_undistort_of_distorted_grid_recovers_grid_and_chroma_stays_aligned():
    lens = LensModel.camera_module_3_wide().scaled(LW, LH)
    k, dist = lens.camera_matrix, np.array(lens.distortion)
    processor = FrameProcessor(LW, LH, ImageAdjust(lens=lens))
    new_k = processor.new_camera_matrix
    # a smooth pattern in the corrected image's coordinates
    gy, gx = np.mgrid[0:LH, 0:LW].astype(np.float32)
    grid = (128 + 100 * np.sin(gx / 9.0) * np.cos(gy / 7.0)).astype(np.float32)
    # distort it: camera pixel p shows the corrected-image point undistortPoints(p, k, dist, P=new_k)
    pix = np.stack([gx.ravel(), gy.ravel()], 1).reshape(-1, 1, 2).astype(np.float64)
    src = (
        cv2.undistortPointsIter(pix, k, dist, None, new_k, (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10))
        .reshape(LH, LW, 2)
        .astype(np.float32)
    )
    distorted = cv2.remap(grid, src[..., 0], src[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    img = np.empty(i420_shape(LW, LH), np.uint8)
    y, u, v = i420_planes(img, LW, LH)
    y[:] = np.clip(np.rint(distorted), 0, 255)
    u[:] = cv2.resize(y, (LW // 2, LH // 2), interpolation=cv2.INTER_AREA)
    v[:] = 255 - u
    out = processor.process(img)
    oy, ou, ov = planes(out, LW, LH)
    inner = (slice(20, LH - 20), slice(20, LW - 20))
    err = np.abs(oy - grid)[inner]
    assert err.mean() < 2.0 and np.percentile(err, 99) < 8
    # chroma went through the same geometry as luma
    oy_half = cv2.resize(out[:LH], (LW // 2, LH // 2), interpolation=cv2.INTER_AREA).astype(np.float64)
    c_inner = (slice(10, LH // 2 - 10), slice(10, LW // 2 - 10))
    assert np.abs(ou - oy_half)[c_inner].mean() < 1.5
    assert np.abs(ov - (255 - oy_half))[c_inner].mean() < 1.5


@pytest.mark.parametrize("roi", [(0.0, 0.0, 1.0, 1.0), (0.1, 0.2, 0.5, 0.6)])
def test_chroma_maps_follow_luma_geometry_with_centre_siting(roi):
    # chroma pixel j is centred on luma coordinate 2j + 0.5: its source must be (luma source - 0.5) / 2
    lens = LensModel.camera_module_3_wide().scaled(LW, LH)
    processor = FrameProcessor(LW, LH, ImageAdjust(lens=lens, roi=roi))
    map_x, map_y = cv2.convertMaps(*processor._maps_c, cv2.CV_32FC1)
    jy, jx = np.mgrid[5 : LH // 2 - 5 : 17, 5 : LW // 2 - 5 : 23]
    luma_out = np.stack([2 * jx + 0.5, 2 * jy + 0.5, np.ones(jx.shape)], -1).reshape(-1, 3)
    rays = luma_out @ np.linalg.inv(processor.new_camera_matrix).T
    luma_src, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), lens.camera_matrix, np.array(lens.distortion))
    expected = (luma_src.reshape(jx.shape + (2,)) - 0.5) / 2
    assert np.abs(map_x[jy, jx] - expected[..., 0]).max() < 1 / 32 + 1e-3  # fixed-point maps: 1/32 px
    assert np.abs(map_y[jy, jx] - expected[..., 1]).max() < 1 / 32 + 1e-3


def test_lens_correction_samples_only_inside_the_frame_and_keeps_pixels_square():
    for w, h, lens in [
        (1280, 720, LensModel.camera_module_3_wide().scaled(1280, 720)),
        (640, 480, LensModel.camera_module_3_wide().scaled(640, 480, crop_to_aspect=True)),
        (640, 480, LensModel(500, 500, 330.0, 230.0, (-0.2, 0.05, 0.001, -0.001, 0.0), (640, 480))),
    ]:
        processor = FrameProcessor(w, h, ImageAdjust(lens=lens))
        new_k = processor.new_camera_matrix
        assert new_k[0, 0] / new_k[1, 1] == pytest.approx(lens.fx / lens.fy)
        mx, my = cv2.initUndistortRectifyMap(
            lens.camera_matrix, np.array(lens.distortion), None, new_k, (w, h), cv2.CV_32FC1
        )
        assert mx.min() > -0.02 and mx.max() < w - 1 + 0.02 and my.min() > -0.02 and my.max() < h - 1 + 0.02
        # the view is as wide as it can be: some border pixel reaches the source edge
        assert min(mx.min(), my.min(), w - 1 - mx.max(), h - 1 - my.max()) < 0.5


def test_lens_model_at_another_size_is_rescaled(frame):
    lens = LensModel.camera_module_3_wide()
    a = FrameProcessor(W, H, ImageAdjust(lens=lens)).process(frame)
    # assumed a centred 4:3 crop of the 16:9 reference, as a Raspberry Pi camera delivers at 640x480
    b = FrameProcessor(W, H, ImageAdjust(lens=lens.scaled(W, H, crop_to_aspect=True))).process(frame)
    np.testing.assert_array_equal(a, b)
    c = FrameProcessor(W, H, ImageAdjust(lens=lens.scaled(W, H))).process(frame)  # stretched: differs
    assert np.abs(c.astype(int) - a).mean() > 1


def test_lens_cropped_matches_scaler_crop_geometry():
    lens = LensModel.camera_module_3_wide()
    # libcamera vc4 at 640x480: ISP crop = 4:3 centred in the 4608x2592 array = (576, 0, 3456, 2592)
    by_crop = lens.cropped((576, 0, 3456, 2592), 640, 480)
    by_aspect = lens.scaled(640, 480, crop_to_aspect=True)
    for name in ("fx", "fy", "cx", "cy"):
        assert getattr(by_crop, name) == pytest.approx(getattr(by_aspect, name))
    # a point of the reference image lands on the matching output pixel (edges map to edges)
    corner = lens.cropped((1000, 500, 2000, 1000), 1000, 500)
    assert (corner.cx + 0.5, corner.cy + 0.5) == pytest.approx(((lens.cx + 0.5 - 1000) / 2, (lens.cy + 0.5 - 500) / 2))
    with pytest.raises(ValueError):
        lens.cropped((0, 0, 0, 10), 640, 480)


def test_lens_and_roi_are_one_remap_equal_to_lens_then_roi(frame, monkeypatch):
    lens = LensModel.camera_module_3_wide().scaled(W, H, crop_to_aspect=True)
    roi = (0.25, 0.25, 0.5, 0.5)
    two_pass = process(process(frame, lens=lens), roi=roi)
    combined_processor = FrameProcessor(W, H, ImageAdjust(lens=lens, roi=roi))
    calls = {"remap": 0, "resize": 0}
    real_remap, real_resize = cv2.remap, cv2.resize

    def remap(*args, **kwargs):
        calls["remap"] += 1
        return real_remap(*args, **kwargs)

    def resize(*args, **kwargs):
        calls["resize"] += 1
        return real_resize(*args, **kwargs)

    monkeypatch.setattr(imaging.cv2, "remap", remap)
    monkeypatch.setattr(imaging.cv2, "resize", resize)
    combined = combined_processor.process(frame)
    monkeypatch.undo()
    assert calls == {"remap": 3, "resize": 0}  # one remap per plane, no second pass
    a, b = planes(combined), planes(two_pass)
    assert np.abs(a[0] - b[0])[8:-8, 8:-8].mean() < 1.5
    assert corr(a[0], b[0]) > 0.995
    assert np.abs(a[1] - b[1])[4:-4, 4:-4].mean() < 1.5
    # and it really zoomed: not the same as lens correction alone
    assert corr(a[0], planes(process(frame, lens=lens))[0]) < 0.9


# ------------------------------------------------------------------------------------------------ mean_luma


def test_mean_luma(frame):
    y = i420_planes(frame, W, H)[0]
    assert mean_luma(frame, W, H) == pytest.approx(y.mean(), abs=2.0)
    assert mean_luma(frame, W, H, step=1) == pytest.approx(y.mean())
    assert 0 <= mean_luma(frame, W, H) <= 255
    grey = np.full(i420_shape(W, H), 77, np.uint8)
    grey[H:] = 200  # chroma is not luma
    assert mean_luma(grey, W, H) == 77.0
    brighter = FrameProcessor(W, H, ImageAdjust(brightness=0.2)).process(frame)
    assert mean_luma(brighter, W, H) > mean_luma(frame, W, H) + 40
    with pytest.raises(ValueError):
        mean_luma(frame, W, H, step=0)
    with pytest.raises(ValueError):
        mean_luma(frame[:100], W, H)
