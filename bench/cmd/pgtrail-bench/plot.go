package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// writePlot draws end-to-end throughput against object concurrency (log
// scale), with the COPY and decode limits as horizontal lines.
func writePlot(path string, res *Results) error {
	const (
		w, h                     = 720, 420
		left, right, top, bottom = 80, 170, 40, 50
	)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	black := color.RGBA{0, 0, 0, 255}
	grey := color.RGBA{220, 220, 220, 255}
	blue := color.RGBA{31, 119, 180, 255}
	red := color.RGBA{214, 39, 40, 255}
	green := color.RGBA{44, 160, 44, 255}

	ymax := res.Copy.EventsPerS
	for _, m := range res.Run {
		ymax = max(ymax, m.EventsPerS)
	}
	ymax = niceCeil(ymax * 1.1)
	xmin, xmax := math.Log2(float64(res.Run[0].Concurrency)), math.Log2(float64(res.Run[len(res.Run)-1].Concurrency))
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	px := func(c int) int {
		return left + int((math.Log2(float64(c))-xmin)/(xmax-xmin)*float64(w-left-right))
	}
	py := func(v float64) int { return h - bottom - int(v/ymax*float64(h-top-bottom)) }

	// Grid and axes.
	for i := 0; i <= 5; i++ {
		v := ymax * float64(i) / 5
		y := py(v)
		line(img, left, y, w-right, y, grey)
		text(img, 8, y+4, fmt.Sprintf("%6.0fk", v/1000), black)
	}
	line(img, left, top, left, h-bottom, black)
	line(img, left, h-bottom, w-right, h-bottom, black)
	for _, m := range res.Run {
		x := px(m.Concurrency)
		line(img, x, h-bottom, x, h-bottom+5, black)
		text(img, x-6, h-bottom+18, fmt.Sprint(m.Concurrency), black)
	}
	text(img, left+(w-left-right)/2-90, h-12, "PGTRAIL_OBJECT_CONCURRENCY", black)
	text(img, left, 22, "pgtrail run: events/s committed (deduplicated, raw record kept)", black)

	// Limits.
	yc := py(res.Copy.EventsPerS)
	dashed(img, left, yc, w-right, yc, red)
	text(img, w-right+8, yc+4, fmt.Sprintf("COPY %.0fk/s", res.Copy.EventsPerS/1000), red)
	y85 := py(0.85 * res.Copy.EventsPerS)
	dashed(img, left, y85, w-right, y85, green)
	text(img, w-right+8, y85+4, "85% of COPY", green)

	// The runs, and the baseline (-baseline) thin, where it was run.
	series := func(ms []Measurement, stroke func(img *image.RGBA, x0, y0, x1, y1 int, c color.Color), c color.Color, label string, dy int) {
		for i, m := range ms {
			x, y := px(m.Concurrency), py(m.EventsPerS)
			if i > 0 {
				stroke(img, px(ms[i-1].Concurrency), py(ms[i-1].EventsPerS), x, y, c)
			}
			dot(img, x, y, c)
		}
		if len(ms) > 0 {
			text(img, w-right+8, py(ms[len(ms)-1].EventsPerS)+dy, label, c)
		}
	}
	series(res.Run, thick, blue, "pgtrail run", 4)
	series(res.Baseline, line, color.RGBA{255, 127, 14, 255}, "baseline", 18)
	if ing := res.Ingest; ing != nil {
		text(img, w-right+8, 60, fmt.Sprintf("ingest %.0fk/s", ing.EventsPerS/1000), black)
	}
	for _, d := range res.Decode {
		if d.Name == "decode" {
			text(img, w-right+8, 44, fmt.Sprintf("decode %.0fk/s", d.EventsPerS/1000), black)
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func niceCeil(v float64) float64 {
	step := math.Pow(10, math.Floor(math.Log10(v)))
	return math.Ceil(v/step*2) * step / 2
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	steps := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= steps; i++ {
		img.Set(x0+(x1-x0)*i/steps, y0+(y1-y0)*i/steps, c)
	}
}

func dashed(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	for x := x0; x < x1; x += 10 {
		line(img, x, y0, min(x+5, x1), y1, c)
	}
}

func thick(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	for d := -1; d <= 1; d++ {
		line(img, x0, y0+d, x1, y1+d, c)
	}
}

func dot(img *image.RGBA, x, y int, c color.Color) {
	for dx := -3; dx <= 3; dx++ {
		for dy := -3; dy <= 3; dy++ {
			if dx*dx+dy*dy <= 10 {
				img.Set(x+dx, y+dy, c)
			}
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
