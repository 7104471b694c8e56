package admin

// The status page's templates, one set per language. The page is whole
// HTML from the server; its script only swaps in the parts the event
// stream sends (statuspage.go) and keeps the view in the address when the
// desk filters, sorts, opens a channel or picks a chart range.

import (
	"fmt"
	"html/template"
	"strings"
)

var pageTemplates = [...]*template.Template{english: parsePage(english), german: parsePage(german)}

func parsePage(l lang) *template.Template {
	dash := "–"
	funcs := template.FuncMap{
		"t":    l.t,
		"tf":   func(key string, args ...any) string { return fmt.Sprintf(l.t(key), args...) },
		"int":  l.int,
		"n":    l.count,
		"code": l.code,
		"ms": func(v *float64) string {
			if v == nil {
				return dash
			}
			return l.ms(*v)
		},
		"pct": func(v *float64) string {
			if v == nil {
				return dash
			}
			return l.pct(*v)
		},
		"share": func(n, of int) string {
			if of == 0 {
				return l.pct(0)
			}
			return l.pct(100 * float64(n) / float64(of))
		},
		"core":  func(v float64) string { return l.float(100*v, 0) + " %" },
		"mib":   l.bytes,
		"clock": func(secs float64) string { return clock(seconds(secs)) },
		"upper": strings.ToUpper,
		// The explanation on the token page holds markup of our own.
		"explain": func() template.HTML { return template.HTML(l.t("token explain")) },
	}
	return template.Must(template.New("page").Funcs(funcs).Parse(pageHTML))
}

// SortKeys are the orders the page offers.
func (m *pageModel) SortKeys() []string { return []string{"name", "loss", "ping", "talk"} }

// DefaultCollapse is the collapse size when the address names none.
func (m *pageModel) DefaultCollapse() int { return defaultCollapse }

const pageHTML = `
{{define "summary"}}<div class="cards">
<a class="card" href="#channels-title"><span class="k">{{t "participants"}}</span><b id="h-participants">{{int .St.Summary.Participants}}</b>
<span class="d"><span id="h-udp">{{int .St.Summary.UDP}}</span> {{t "udp"}} · <span id="h-tcp">{{int .St.Summary.TCP}}</span> {{t "tcp"}}{{/* browsers, once they can join */}}{{if .St.Summary.Web}} · <span id="h-web">{{int .St.Summary.Web}}</span> {{t "web"}}{{end}}</span></a>
<a class="card nav" href="{{index .Links "talking"}}"><span class="k">{{t "talking now"}}</span><b id="h-talking">{{int .St.Summary.Talking}}</b></a>
<div class="card"><span class="k">{{t "floors"}}</span>{{range .St.Summary.Floors}}
<a class="line" href="#ch-{{.ID}}">{{.Path}}: <b>{{or .Holder (t "nobody")}}</b>{{if .LeftSec}} ({{tf "left" (clock .LeftSec)}}){{end}} · {{n "waiting" .Queue}}</a>{{else}}
<span class="d">{{t "no halls"}}</span>{{end}}</div>
<div class="card"><span class="k">{{t "recording"}}</span>{{range .St.Summary.Recording}}
<a class="line rec" href="#ch-{{.ID}}">● {{.Path}}</a>{{else}}
<span class="d">{{t "none"}}</span>{{end}}</div>
<div class="card{{if .St.Summary.Bad}} warn{{end}}"><span class="k">{{t "health"}}</span>
<a class="nav" href="{{index .Links "bad"}}"><b id="h-bad">{{int .St.Summary.Bad}}</b>
<span class="d">{{tf "bad share" (int .St.Summary.Bad) (int .St.Summary.Participants) (share .St.Summary.Bad .St.Summary.Participants)}}</span></a>
<a class="line" href="#charts-title">{{with .St.Summary.CPU}}{{tf "cpu" (core .)}}{{with $.St.Summary.MemBytes}} · {{tf "memory" (mib .)}}{{end}}{{else}}{{t "cpu unknown"}}{{end}}</a></div>
</div>
<p class="updated">{{t "updated"}} <time id="h-time">{{.St.Time.Format "15:04:05"}}</time>{{if not .St.Started.IsZero}} · {{tf "running since" .St.Version (.St.Started.Format "2006-01-02 15:04")}}{{end}}</p>{{end}}

{{define "charts"}}<p class="range"><a class="nav{{if not .V.Session}} on{{end}}" href="{{index .Links "hour"}}">{{t "last hour"}}</a> · <a class="nav{{if .V.Session}} on{{end}}" href="{{index .Links "session"}}">{{t "whole session"}}</a></p>
<div class="charts">{{range .Charts}}<figure>{{.SVG}}</figure>{{end}}</div>{{end}}

{{define "head"}}<th><a class="nav" href="{{index .Links "sort name"}}">{{t "name"}}</a></th><th>{{t "voice"}}</th><th class="num"><a class="nav" href="{{index .Links "sort ping"}}">{{t "ping"}}</a></th><th class="num"><a class="nav" href="{{index .Links "sort loss"}}">{{t "loss"}}</a></th><th class="num"><a class="nav" href="{{index .Links "sort talk"}}">{{t "talk time"}}</a></th>{{end}}

{{define "cells"}}<td class="{{if .Talking}}talking{{else if .Silenced}}silenced{{end}}">{{.Name}}</td><td>{{upper .Transport}}</td><td class="num"{{with .UDPPingMs}} title="{{tf "udp ping" (ms .)}}"{{end}}>{{ms .PingMs}}</td><td class="num"{{if .LossPct}} title="{{tf "loss detail" (pct .LossInPct) (pct .LossOutPct)}}"{{end}}>{{pct .LossPct}}</td><td class="num">{{clock .TalkSec}}</td>{{end}}

{{define "modes"}}<p class="modes"><a class="nav{{if not .V.Filtering}} on{{end}}" href="{{index .Links "all"}}">{{t "show all"}}</a>
<a class="nav{{if eq .V.Show "bad"}} on{{end}}" href="{{index .Links "bad"}}">{{tf "show bad" (int .St.Summary.Bad)}}</a>
<a class="nav{{if eq .V.Show "talking"}} on{{end}}" href="{{index .Links "talking"}}">{{tf "show talking" (int .St.Summary.Talking)}}</a></p>{{end}}

{{define "channels"}}{{template "modes" .}}{{if .V.Filtering}}
<p class="found" id="found">{{tf "matches" (int (len .Matches)) (int .St.Summary.Participants)}}{{if .V.Query}} {{tf "matching" .V.Query}}{{end}}{{if eq .V.Show "bad"}} {{t "all bad"}}{{end}}{{if eq .V.Show "talking"}} {{t "all talking"}}{{end}}</p>
{{if .Matches}}<div class="scroll"><table class="users" id="matches"><tr><th>{{t "channel"}}</th>{{template "head" .}}</tr>
{{range .Matches}}<tr{{if .User.Bad}} class="bad"{{end}}><td><a href="#ch-{{.Channel.ID}}">{{.Channel.Path}}</a></td>{{template "cells" .User}}</tr>
{{end}}</table></div>{{else}}<p>{{t "no matches"}}</p>{{end}}
{{else}}{{range $ch := .Channels}}
<section class="channel" id="ch-{{.ID}}"><h3>{{.Path}} <span class="meta">{{n "members" (len .Users)}}{{if .Talking}} · {{n "talking count" .Talking}}{{end}}{{if .Bad}} · <span class="badc">{{n "bad count" .Bad}}</span>{{end}}</span>{{if .Recording}} <span class="rec">{{t "recording flag"}}</span>{{end}}{{if .Mixing}} {{t "mixed"}}{{end}}
{{if .Users}}<a class="nav toggle" href="{{.Toggle}}">{{if .Open}}{{t "hide members"}}{{else}}{{t "show members"}}{{end}}</a>{{end}}</h3>
{{with .Floor}}<div class="floor">{{t "floor"}}: {{if .Holder}}<b>{{.Holder}}</b>{{if .LeftSec}} ({{tf "left" (clock .LeftSec)}}){{end}}{{else}}{{t "nobody"}}{{end}}{{if .Queue}} · {{t "queue"}}: {{range $i, $n := .Queue}}{{if $i}}, {{end}}{{$n}}{{end}}{{end}}{{if .MuteAll}} · {{t "everyone muted"}}{{end}}</div>
{{if .MinutesKept}}<table class="minutes"><caption>{{t "minutes"}}</caption><tr><th>{{t "from"}}</th><th>{{t "speaker"}}</th><th>{{t "length"}}</th></tr>
{{range .Minutes}}<tr><td>{{.Start.Format "15:04:05"}}</td><td>{{.Name}}</td><td>{{clock .Seconds}}</td></tr>
{{end}}</table>{{end}}{{end}}
{{if .Open}}<div class="scroll"><table class="users"><tr>{{template "head" $}}{{if .Floor}}<th class="num">{{t "floor time"}}</th>{{end}}</tr>
{{range .Rows}}<tr{{if .Bad}} class="bad"{{end}}>{{template "cells" .}}{{if $ch.Floor}}<td class="num">{{clock .FloorSec}}</td>{{end}}</tr>
{{end}}</table></div>{{end}}</section>{{end}}{{end}}{{end}}

{{define "style"}}<style>
*{box-sizing:border-box}
body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f8}
main{max-width:1280px;margin:0 auto;padding:.6em 1em 2em}
header{display:flex;justify-content:space-between;align-items:baseline;gap:1em;flex-wrap:wrap}
h1{font-size:1.35em;margin:.2em 0} h2{font-size:1.15em;margin:1.2em 0 .4em} h3{font-size:1.05em;margin:.2em 0 .3em}
a{color:#1a56a0} .nav.on{font-weight:700;color:#222;text-decoration:none}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.6em}
.card{display:block;background:#fff;border:1px solid #d8d8e0;border-radius:8px;padding:.5em .8em;color:inherit;text-decoration:none}
.card b{display:block;font-size:1.9em;line-height:1.2}.card .k{display:block;color:#555;font-size:.9em}.card .d{color:#555;font-size:.88em}
.card .line{display:block;color:inherit;font-size:.92em;margin-top:.15em}.card .line b{display:inline;font-size:1em}
.card a{color:inherit;text-decoration:none}.card.warn{border-color:#d97706;background:#fffbeb}.card.warn b{color:#b45309}
.updated{color:#666;font-size:.85em;margin:.3em 0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:.6em}
figure{margin:0;background:#fff;border:1px solid #d8d8e0;border-radius:8px;padding:.3em}
svg.chart{width:100%;height:auto;font:11px system-ui,sans-serif} svg .title{font-weight:600;font-size:12px} svg .unit,svg .x,svg .y{fill:#666}
.tools{display:flex;flex-wrap:wrap;gap:.5em 1.2em;align-items:center;margin:.4em 0}
.tools input[type=search]{font:inherit;padding:.3em .5em;min-width:14em} .tools input[type=number]{width:5em;font:inherit}
.tools select,.tools button{font:inherit}
.modes a{margin-right:1em}
.channel{background:#fff;border:1px solid #d8d8e0;border-radius:8px;padding:.4em .8em;margin:.5em 0}
.channel .meta{font-weight:400;color:#555;font-size:.92em}.toggle{font-weight:400;font-size:.9em;margin-left:.6em}
.scroll{overflow-x:auto}
table{border-collapse:collapse}
td,th{padding:.15em 1.6em .15em 0;text-align:left;white-space:nowrap} th{font-weight:600;color:#555} th a{color:inherit}
.num{text-align:right;font-variant-numeric:tabular-nums}
tr.bad td{background:#fff1e6} .badc{color:#b45309;font-weight:600}
.talking{font-weight:700;color:#0a7d2c} .talking::before{content:"▶ "} .silenced{color:#999} .rec{color:#c00;font-weight:700}
.floor{background:#f4f4f8;padding:.4em .6em;border-radius:4px;display:inline-block}
.minutes{margin:.4em 0 .6em;font-size:.93em} .minutes caption{text-align:left;color:#555}
@media (max-width:700px){body{font-size:14px} main{padding:.4em .5em} .card b{font-size:1.5em} td,th{padding-right:.5em}}
</style>{{end}}

{{define "page"}}<!doctype html>
<html lang="{{code}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Name}} · Plenum {{t "title"}}</title>{{template "style"}}</head><body><main>
<header><h1>{{.Name}}</h1><nav><a href="{{index .Links "en"}}">English</a> · <a href="{{index .Links "de"}}">Deutsch</a></nav></header>
<section id="summary">{{index .Parts "summary"}}</section>
<h2 id="charts-title">{{t "charts"}}</h2>
<section id="charts">{{index .Parts "charts"}}</section>
<h2 id="channels-title">{{t "channels"}}</h2>
<form class="tools" id="tools" method="get" action="/">
<input type="search" name="q" value="{{.V.Query}}" placeholder="{{t "filter"}}" aria-label="{{t "filter"}}">
<label>{{t "sort"}} <select name="sort">{{range $s := .SortKeys}}<option value="{{$s}}"{{if eq $s $.V.Sort}} selected{{end}}>{{t (printf "by %s" $s)}}</option>{{end}}</select></label>
<label>{{t "collapse"}} <input type="number" name="collapse" min="0" value="{{.V.Collapse}}"> {{t "collapse unit"}}</label>
{{if .V.Show}}<input type="hidden" name="show" value="{{.V.Show}}">{{end}}{{if .V.Session}}<input type="hidden" name="range" value="session">{{end}}{{if .V.LangSet}}<input type="hidden" name="lang" value="{{code}}">{{end}}
<noscript><button>{{t "apply"}}</button></noscript>
</form>
<section id="channels">{{index .Parts "channels"}}</section>
</main>
<script>
"use strict";
(() => {
  let es;
  // stream opens the event stream for the view in the address; seen
  // names the parts the page already shows.
  function stream(seen) {
    if (es) es.close();
    const q = new URLSearchParams(location.search);
    q.set("view", "page");
    if (seen) q.set("seen", seen);
    es = new EventSource("/api/events?" + q);
    for (const part of ["summary", "charts", "channels"]) {
      es.addEventListener(part, e => {
        const t0 = performance.now();
        document.getElementById(part).innerHTML = e.data;
        window.plenumUpdate = {part, bytes: e.data.length, ms: performance.now() - t0, n: (window.plenumUpdate?.n || 0) + 1};
      });
    }
  }
  // go shows the view at url: the address changes, the stream follows.
  function go(url) {
    history.pushState(null, "", url);
    stream();
  }
  addEventListener("popstate", () => stream());
  document.addEventListener("click", e => {
    const a = e.target.closest("a.nav");
    if (a && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      e.preventDefault();
      go(a.href);
      syncTools();
    }
  });
  const tools = document.getElementById("tools");
  // syncTools shows the view's filter, sort and collapse size in the form.
  function syncTools() {
    const q = new URLSearchParams(location.search);
    tools.q.value = q.get("q") || "";
    tools.sort.value = q.get("sort") || "name";
    tools.collapse.value = q.get("collapse") || "{{.DefaultCollapse}}";
  }
  let timer;
  function apply() {
    const u = new URL(location);
    for (const [k, v, def] of [["q", tools.q.value.trim(), ""], ["sort", tools.sort.value, "name"], ["collapse", tools.collapse.value, "{{.DefaultCollapse}}"]]) {
      if (v === def || v === "") u.searchParams.delete(k); else u.searchParams.set(k, v);
    }
    if (u.search !== location.search) {
      history.replaceState(null, "", u);
      stream();
    }
  }
  tools.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(apply, 250); });
  tools.addEventListener("submit", e => { e.preventDefault(); apply(); });
  stream("{{.Seen}}");
})();
</script>
</body></html>{{end}}

{{define "token"}}<!doctype html>
<html lang="{{code}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{{t "token title"}}</title>
<style>body{font:15px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:40em}</style></head><body>
<h1>{{t "token title"}}</h1>
{{if .}}<p><b>{{.}}</b></p>{{end}}
<p>{{explain}}</p>
<form method="get" action="/"><input type="password" name="token" placeholder="{{t "token field"}}" autofocus> <button>{{t "token open"}}</button></form>
</body></html>{{end}}
`
