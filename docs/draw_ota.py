"""Draw docs/ota_sky130.png, the schematic of ota_sky130 (pyspice_models/sky130_amplifiers.lib).

Run from the repository root: ``python docs/draw_ota.py``.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(9, 6.4))
ax.set_axis_off()
ax.set_aspect("equal")
LW = 1.6


def wire(*points):
    xs, ys = zip(*points, strict=True)
    ax.plot(xs, ys, "k-", lw=LW, solid_capstyle="round")


def dot(x, y):
    ax.plot([x], [y], "ko", ms=4.5)


def label(x, y, text, **kw):
    ax.text(x, y, text, **{"fontsize": 9, **kw})


def mos(x, y, kind, gate_side, name, size):
    """Transistor with its channel at x, drain/source leads up/down to y +- 0.6; returns the
    gate lead end. nfet: drain up; pfet: source up (bubble on the gate)."""
    s = -1 if gate_side == "left" else 1
    wire((x, y - 0.35), (x, y + 0.35))  # channel
    wire((x, y + 0.25), (x - 0.3 * s, y + 0.25), (x - 0.3 * s, y + 0.6))
    wire((x, y - 0.25), (x - 0.3 * s, y - 0.25), (x - 0.3 * s, y - 0.6))
    gx = x + 0.12 * s
    wire((gx, y - 0.3), (gx, y + 0.3))  # gate plate
    if kind == "p":
        ax.add_patch(plt.Circle((gx + 0.08 * s, y), 0.07, fill=False, lw=LW))
        wire((gx + 0.15 * s, y), (gx + 0.45 * s, y))
    else:
        wire((gx, y), (gx + 0.45 * s, y))
    tx = x - 0.3 * s + (0.12 if s < 0 else -0.12)
    label(tx, y + 0.05, f"{name}\n{size}", ha="left" if s < 0 else "right", va="center")
    return (gx + 0.45 * s, y), (x - 0.3 * s, y + 0.6), (x - 0.3 * s, y - 0.6)


VDD, VSS = 9.0, 0.0
wire((-0.6, VDD), (10.2, VDD))
wire((-0.6, VSS), (10.2, VSS))
label(-0.6, VDD + 0.15, "vdd (+0.9 V from VCM)")
label(-0.6, VSS - 0.45, "vss (-0.9 V from VCM)")

# bias: Iref into diode M8
wire((0.3, VDD), (0.3, 6.6))
ax.add_patch(plt.Circle((0.3, 6.1), 0.45, fill=False, lw=LW))
ax.annotate("", (0.3, 5.8), (0.3, 6.4), arrowprops=dict(arrowstyle="->", lw=LW))
label(0.85, 6.1, "Iref\n20 uA", va="center")
wire((0.3, 5.65), (0.3, 2.6))
g8, d8, s8 = mos(0.6, 2.0, "n", "right", "M8", "4/1")
wire(d8, (0.3, 2.6))
wire(s8, (0.3, VSS))
wire(g8, (1.3, 2.0))
wire((0.3, 2.9), (1.3, 2.9), (1.3, 2.0))  # diode connection
dot(0.3, 2.9)
label(1.35, 2.15, "nb")

# tail M5
g5, d5, s5 = mos(3.7, 2.0, "n", "left", "M5", "8/1")
wire(g8, (g5[0], 2.0))
wire(s5, (s5[0], VSS))
# input pair
g1, d1, s1 = mos(2.2, 4.3, "n", "left", "M1", "24/1")
g2, d2, s2 = mos(5.2, 4.3, "n", "right", "M2", "24/1")
wire(s1, (s1[0], 3.2), (s2[0], 3.2), s2)
wire((d5[0], d5[1]), (d5[0], 3.2))
dot(d5[0], 3.2)
label(d5[0] + 0.08, 3.3, "tail 40 uA")
wire(g1, (g1[0] - 0.3, 4.3))
label(g1[0] - 1.0, 4.25, "inn", va="center")
wire(g2, (g2[0] + 0.3, 4.3))
label(g2[0] + 0.35, 4.25, "inp", va="center")
# mirror load
g3, d3, s3 = mos(2.8, 7.4, "p", "right", "M3", "10/1")
g4, d4, s4 = mos(4.6, 7.4, "p", "left", "M4", "10/1")
wire((s3[0], 7.4 + 0.6), (s3[0], VDD))
wire((s4[0], 7.4 + 0.6), (s4[0], VDD))
wire((d3[0], 6.8), (d1[0], 4.9))
wire((d4[0], 6.8), (d2[0], 4.9))
wire(g3, (3.7, 7.4))
wire(g4, (3.7, 7.4))
wire((3.7, 7.4), (3.7, 6.2), (d3[0], 6.2))
dot(d3[0], 6.2)
dot(3.7, 7.4)
dot(d4[0], 5.6)
label(d4[0] + 0.1, 5.45, "o1")
# second stage
g6, d6, s6 = mos(8.4, 7.4, "p", "left", "M6", "125/1")
wire((s6[0], 8.0), (s6[0], VDD))
g7, d7, s7 = mos(8.4, 2.0, "n", "left", "M7", "50/1")
wire(s7, (s7[0], VSS))
wire((d6[0], 6.8), (d7[0], 2.6))
wire(g6, (6.4, 7.4), (6.4, 5.6), (d4[0], 5.6))
wire(g7, (g7[0], 1.2), (3.1, 1.2), (3.1, 2.0))
dot(3.1, 2.0)
# output
dot(d6[0], 4.6)
wire((d6[0], 4.6), (10.2, 4.6))
label(10.25, 4.55, "out", va="center")
# Miller compensation: o1 - Rz - Cc - out
wire((6.4, 5.6), (6.4, 4.6), (6.55, 4.6))
ax.add_patch(plt.Rectangle((6.55, 4.48), 0.55, 0.24, fill=False, lw=LW))
label(6.55, 4.85, "Rz 750")
wire((7.1, 4.6), (7.35, 4.6))
wire((7.35, 4.35), (7.35, 4.85))
wire((7.5, 4.35), (7.5, 4.85))
label(7.2, 4.0, "Cc 1 pF")
wire((7.5, 4.6), (d6[0], 4.6))
dot(6.4, 5.6)
label(8.5, 3.3, "250 uA", fontsize=8)

ax.set_xlim(-1.2, 11.2)
ax.set_ylim(-1.0, 9.8)
ax.set_title(
    "ota_sky130: two-stage Miller OTA, SKY130 1.8 V FETs (W/L in um),"
    " nfet bodies at vss, pfet at vdd",
    fontsize=10,
)
out = Path(__file__).with_name("ota_sky130.png")
fig.savefig(out, dpi=110, bbox_inches="tight")
print(f"wrote {out}")
