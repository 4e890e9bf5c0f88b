"""The tray icon painter, checked pixel by pixel at two sizes and two pixel ratios."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor, QFontMetricsF, QImage

from desktop_agent.ui.badge import (
    ICON_SIZES,
    badge_font,
    badge_text,
    make_tray_icon,
    render_tray_icon,
)

SIZES = [(16, 1.0), (16, 2.0), (32, 1.0), (64, 1.0)]
WITH_DIGITS = [(16, 2.0), (22, 1.0), (32, 1.0), (64, 1.0)]


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, ""), (-3, ""), (1, "1"), (7, "7"), (99, "99"), (100, "99+"), (12345, "99+")],
)
def test_badge_text(count: int, text: str) -> None:
    assert badge_text(count, 64) == text


@pytest.mark.parametrize(
    ("pixels", "count", "text"),
    [(16, 7, ""), (16, 120, ""), (22, 7, "7"), (22, 10, "9+"), (24, 99, "9+"), (32, 42, "42")],
)
def test_small_icons_show_fewer_digits_or_a_dot(pixels: int, count: int, text: str) -> None:
    assert badge_text(count, pixels) == text


@pytest.mark.parametrize(("size", "dpr"), [(22, 1.0), (24, 1.0), (22, 2.0), (16, 2.0), (32, 1.0)])
def test_badge_digits_are_readable_at_tray_sizes_and_on_hidpi(
    qapp: Any, size: int, dpr: float
) -> None:
    text = badge_text(57, size * dpr)
    assert text
    digit = QFontMetricsF(badge_font(text, size)).tightBoundingRect("8").height()
    assert digit * dpr >= 8  # device pixels; two digits at 22 px were about 5


def test_a_16_px_icon_shows_a_dot_for_any_count(qapp: Any) -> None:
    one, many = render(1, "normal", 16, 1.0), render(120, "normal", 16, 1.0)
    assert one == many
    assert red_columns(one)


def pixels(image: QImage) -> list[tuple[int, int, QColor]]:
    return [
        (x, y, image.pixelColor(x, y))
        for y in range(image.height())
        for x in range(image.width())
        if image.pixelColor(x, y).alpha() > 64
    ]


def is_badge_red(colour: QColor) -> bool:
    return colour.red() > 180 and colour.green() < 90 and colour.blue() < 90


def red_columns(image: QImage) -> list[int]:
    return sorted({x for x, _, c in pixels(image) if is_badge_red(c)})


def render(count: int, state: Any, size: int, dpr: float) -> QImage:
    return render_tray_icon(count, state, size, dpr).toImage()


@pytest.mark.parametrize(("size", "dpr"), SIZES)
def test_pixmap_has_device_pixels_for_the_ratio(qapp: Any, size: int, dpr: float) -> None:
    pixmap = render_tray_icon(7, "normal", size, dpr)
    assert pixmap.width() == round(size * dpr)
    assert pixmap.devicePixelRatio() == dpr
    assert pixmap.toImage().pixelColor(0, 0).alpha() == 0  # transparent background


@pytest.mark.parametrize(("size", "dpr"), SIZES)
def test_no_red_badge_without_unread(qapp: Any, size: int, dpr: float) -> None:
    assert red_columns(render(0, "normal", size, dpr)) == []


@pytest.mark.parametrize(("size", "dpr"), SIZES)
def test_red_badge_sits_in_the_top_right_corner_when_there_is_unread(
    qapp: Any, size: int, dpr: float
) -> None:
    image = render(7, "normal", size, dpr)
    red = [(x, y) for x, y, c in pixels(image) if is_badge_red(c)]
    assert len(red) > (size * dpr) ** 2 * 0.05
    assert min(x for x, _ in red) >= image.width() * 0.3
    assert max(y for _, y in red) <= image.height() * 0.6


@pytest.mark.parametrize(("size", "dpr"), WITH_DIGITS)
def test_badge_text_is_painted_in_white_on_the_badge(qapp: Any, size: int, dpr: float) -> None:
    image = render(7, "normal", size, dpr)
    top = image.height() * 0.52
    whites = [
        (x, y)
        for x, y, c in pixels(image)
        if y < top and x > image.width() * 0.5 and min(c.red(), c.green(), c.blue()) > 220
    ]
    assert whites, "the digit must be visible"


@pytest.mark.parametrize(("size", "dpr"), WITH_DIGITS)
def test_ninety_nine_plus_badge_is_wider_than_a_single_digit(
    qapp: Any, size: int, dpr: float
) -> None:
    seven = red_columns(render(7, "normal", size, dpr))
    many = red_columns(render(100, "normal", size, dpr))
    assert len(many) > len(seven)


@pytest.mark.parametrize(("size", "dpr"), SIZES)
@pytest.mark.parametrize("count", [0, 7, 100])
def test_disconnected_icon_has_no_saturated_colour(
    qapp: Any, size: int, dpr: float, count: int
) -> None:
    image = render(count, "disconnected", size, dpr)
    saturated = [c for _, _, c in pixels(image) if c.hsvSaturationF() > 0.2]
    assert saturated == []
    assert pixels(image), "the greyed bell is still drawn"


@pytest.mark.parametrize(("size", "dpr"), SIZES)
def test_do_not_disturb_shows_a_blue_moon_and_keeps_the_count(
    qapp: Any, size: int, dpr: float
) -> None:
    image = render(7, "dnd", size, dpr)
    blue = [
        (x, y)
        for x, y, c in pixels(image)
        if c.blue() > 170 and c.red() < 120 and c.hsvSaturationF() > 0.4
    ]
    assert blue, "a moon marks do-not-disturb"
    assert min(y for _, y in blue) >= image.height() * 0.45  # bottom left, away from the badge
    assert red_columns(image), "the count stays visible during do-not-disturb"
    assert red_columns(render(7, "normal", size, dpr)) and not [
        c for _, _, c in pixels(render(7, "normal", size, dpr)) if c.blue() > 170 and c.red() < 120
    ]


def test_normal_icon_differs_from_dnd_and_disconnected(qapp: Any) -> None:
    images = {state: render(3, state, 32, 1.0) for state in ("normal", "dnd", "disconnected")}
    assert images["normal"] != images["dnd"]
    assert images["normal"] != images["disconnected"]


def test_unknown_state_is_refused(qapp: Any) -> None:
    with pytest.raises(ValueError, match="normal, dnd, disconnected or waiting"):
        render_tray_icon(1, "offline", 16)  # type: ignore[arg-type]


def test_tray_qicon_holds_every_size_at_one_and_two_x(qapp: Any) -> None:
    icon = make_tray_icon(7, "normal")
    sizes = {s.width() for s in icon.availableSizes()}
    assert set(ICON_SIZES) <= sizes
    assert {s * 2 for s in ICON_SIZES} <= sizes
    assert not icon.pixmap(QSize(22, 22)).isNull()


def is_alarm_orange(colour: QColor) -> bool:
    return colour.red() > 200 and 80 < colour.green() < 150 and colour.blue() < 60


@pytest.mark.parametrize(("size", "dpr"), SIZES)
def test_a_visitor_waiting_past_the_first_step_turns_the_bell_orange_and_keeps_the_count(
    qapp: Any, size: int, dpr: float
) -> None:
    waiting = render(2, "waiting", size, dpr)
    normal = render(2, "normal", size, dpr)
    orange = sum(1 for _, _, c in pixels(waiting) if is_alarm_orange(c))
    # A normal icon has a few orange-ish pixels where gold meets the red badge.
    edges = sum(1 for _, _, c in pixels(normal) if is_alarm_orange(c))
    assert orange > 4 * edges + 4, (orange, edges)
    assert red_columns(waiting), "the count stays visible"
