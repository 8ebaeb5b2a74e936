package sim

import (
	"fmt"
	"math"
	"strings"
)

var policyColours = map[Policy]string{PolicySun: "#d98c00", PolicyCarbon: "#2a9d4b", PolicyPrice: "#3465a4", PolicyRandom: "#888888"}

// zoneColours tell the zones apart in the per-zone panels.
var zoneColours = []string{"#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324", "#808000", "#000075"}

// SVG draws the report's plots in one standalone SVG: utilisation, surplus
// share, grid CO2 and the ledger's payments per hour for every policy;
// under ours, utilisation, surplus share and CO2 per hour by grid zone;
// and the ledger reputation, balance and stake of honest and cheating
// providers under ours.
func (r *Report) SVG() string {
	const w, h, pad = 900, 220, 50
	panels := []struct {
		title string
		unit  string
		value func(Hour) (float64, bool)
	}{
		{"fleet utilisation", "%", func(x Hour) (float64, bool) { return 100 * x.Busy, true }},
		{"job energy from surplus", "%", func(x Hour) (float64, bool) {
			return 100 * x.RenewableWh / max(x.EnergyWh, 1e-9), x.EnergyWh > 0
		}},
		{"attributional CO₂ of jobs", "kg/h", func(x Hour) (float64, bool) { return x.CO2Grams / 1000, true }},
		{"displacement CO₂ of jobs", "kg/h", func(x Hour) (float64, bool) { return x.DisplacedCO2Grams / 1000, true }},
		{"paid to providers by the ledger", "GRID/h", func(x Hour) (float64, bool) { return x.PaidGRID, true }},
	}
	zonePanels := []struct {
		title string
		unit  string
		value func(ZoneHour) (float64, bool)
	}{
		{"utilisation by zone, sun", "%", func(x ZoneHour) (float64, bool) { return 100 * x.Busy, true }},
		{"surplus share by zone, sun", "%", func(x ZoneHour) (float64, bool) {
			return 100 * x.RenewableWh / max(x.EnergyWh, 1e-9), x.EnergyWh > 0
		}},
		{"attributional CO₂ by zone, sun", "kg/h", func(x ZoneHour) (float64, bool) { return x.CO2Grams / 1000, true }},
	}
	ours, haveOurs := r.Result(PolicySun)
	count := len(panels)
	if haveOurs {
		count += len(zonePanels) + 3
	}
	total := count * (h + 30)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, total)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, total)
	for k, p := range panels {
		var series []plotSeries
		for _, res := range r.Results {
			s := plotSeries{name: string(res.Policy), colour: policyColours[res.Policy]}
			for i, hr := range res.Hourly {
				if v, ok := p.value(hr); ok {
					s.x = append(s.x, float64(i))
					s.y = append(s.y, v)
				}
			}
			series = append(series, s)
		}
		drawPanel(&b, 0, k*(h+30), w, h, pad, p.title+" ("+p.unit+") by hour", series)
	}
	if haveOurs {
		for k, p := range zonePanels {
			var series []plotSeries
			for z, id := range ours.ZoneIDs {
				s := plotSeries{name: id, colour: zoneColours[z%len(zoneColours)]}
				for i, hr := range ours.Hourly {
					if z >= len(hr.Zones) {
						continue
					}
					if v, ok := p.value(hr.Zones[z]); ok {
						s.x = append(s.x, float64(i))
						s.y = append(s.y, v)
					}
				}
				series = append(series, s)
			}
			drawPanel(&b, 0, (len(panels)+k)*(h+30), w, h, pad, p.title+" ("+p.unit+") by hour", series)
		}
		top := len(panels) + len(zonePanels)
		hon := plotSeries{name: "honest", colour: "#2a9d4b"}
		che := plotSeries{name: "cheating", colour: "#c0392b"}
		for _, t := range ours.Trust {
			hon.x, hon.y = append(hon.x, t.Hour), append(hon.y, t.HonestReputation)
			che.x, che.y = append(che.x, t.Hour), append(che.y, t.CheaterReputation)
		}
		drawPanel(&b, 0, top*(h+30), w, h, pad, "mean ledger reputation score under sun (0..1) by hour", []plotSeries{hon, che})
		honPay := plotSeries{name: "honest", colour: hon.colour}
		chePay := plotSeries{name: "cheating", colour: che.colour}
		for _, t := range ours.Trust {
			honPay.x, honPay.y = append(honPay.x, t.Hour), append(honPay.y, t.HonestEarnedGRID)
			chePay.x, chePay.y = append(chePay.x, t.Hour), append(chePay.y, t.CheaterEarnedGRID)
		}
		drawPanel(&b, 0, (top+1)*(h+30), w, h, pad, "mean earnings per provider under sun (ledger balance, GRID) by hour", []plotSeries{honPay, chePay})
		honStake := plotSeries{name: "honest", colour: hon.colour}
		cheStake := plotSeries{name: "cheating", colour: che.colour}
		for _, t := range ours.Trust {
			honStake.x, honStake.y = append(honStake.x, t.Hour), append(honStake.y, t.HonestStakeGRID)
			cheStake.x, cheStake.y = append(cheStake.x, t.Hour), append(cheStake.y, t.CheaterStakeGRID)
		}
		drawPanel(&b, 0, (top+2)*(h+30), w, h, pad, "mean ledger stake per provider under sun (GRID; an upheld audit dispute slashes all of it) by hour", []plotSeries{honStake, cheStake})
	}
	b.WriteString("</svg>\n")
	return b.String()
}

type plotSeries struct {
	name, colour string
	x, y         []float64
}

func drawPanel(b *strings.Builder, x0, y0, w, h, pad int, title string, series []plotSeries) {
	maxX, maxY := 1.0, 0.0
	for _, s := range series {
		for i := range s.x {
			maxX = max(maxX, s.x[i])
			if !math.IsNaN(s.y[i]) && !math.IsInf(s.y[i], 0) {
				maxY = max(maxY, s.y[i])
			}
		}
	}
	if maxY == 0 {
		maxY = 1
	}
	maxY *= 1.05
	pw, ph := float64(w-2*pad), float64(h-pad)
	ox, oy := float64(x0+pad), float64(y0+20)
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0+pad, y0+14, title)
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#ccc"/>`+"\n", ox, oy, pw, ph)
	for k := 0; k <= 4; k++ {
		v := maxY * float64(k) / 4
		y := oy + ph - ph*float64(k)/4
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="end" fill="#555">%s</text>`+"\n", ox-4, y+4, tick(v))
	}
	for d := 0.0; d <= maxX; d += 24 {
		x := ox + pw*d/maxX
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#eee"/><text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">day %d</text>`+"\n",
			x, oy, x, oy+ph, x, oy+ph+14, int(d/24))
	}
	for k, s := range series {
		var pts strings.Builder
		for i := range s.x {
			y := s.y[i]
			if math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", ox+pw*s.x[i]/maxX, oy+ph-ph*y/maxY)
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.2" points="%s"/>`+"\n", s.colour, pts.String())
		if len(series) > 4 {
			// Many series (the zones): one row of legend beside the title,
			// right-aligned, each name as wide as its letters.
			right := ox + pw
			for _, later := range series[k+1:] {
				right -= legendWidth(later.name)
			}
			fmt.Fprintf(b, `<text x="%.0f" y="%d" fill="%s" font-weight="bold">%s</text>`+"\n", right-legendWidth(s.name), y0+14, s.colour, s.name)
			continue
		}
		fmt.Fprintf(b, `<text x="%.0f" y="%d" fill="%s">%s</text>`+"\n", ox+pw-110, y0+14+14*k, s.colour, s.name)
	}
}

// legendWidth is the room a legend name takes at 12 px, with a gap.
func legendWidth(name string) float64 { return 7.5*float64(len([]rune(name))) + 10 }

// tick writes an axis value in at most five characters, so it fits the
// margin: 0.135, 41.9, 7270, 29.1k.
func tick(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}
