package admin

// The status page in English and German: the browser's language picks
// one (Accept-Language, or ?lang=en|de), and every text the page shows is
// in the one table below.

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// lang is a language of the page.
type lang int

const (
	english lang = iota
	german
)

// code is the language's code, for <html lang> and ?lang=.
func (l lang) code() string { return [...]string{"en", "de"}[l] }

// chooseLang picks the page's language: ?lang= if it names one, else the
// browser's preference among English and German (Accept-Language, by
// quality, the first listed on a tie), else English.
func chooseLang(r *http.Request) lang {
	switch r.URL.Query().Get("lang") {
	case "en":
		return english
	case "de":
		return german
	}
	best, bestQ := english, 0.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(tag), "-")
		l, ok := map[string]lang{"en": english, "de": german}[primary]
		if ok && q > bestQ {
			best, bestQ = l, q
		}
	}
	return best
}

// texts holds every text of the page: English, then German. Some are
// formats for fmt.
var texts = map[string][2]string{
	"title":          {"Status", "Status"},
	"updated":        {"Updated", "Stand"},
	"running since":  {"Plenum %s, running since %s", "Plenum %s, läuft seit %s"},
	"participants":   {"Participants", "Teilnehmende"},
	"udp":            {"Mumble UDP", "Mumble UDP"},
	"tcp":            {"Mumble TCP tunnel", "Mumble TCP-Tunnel"},
	"web":            {"web", "Web"},
	"talking now":    {"Talking now", "Sprechen gerade"},
	"floor":          {"Floor", "Wort"},
	"floors":         {"Floor", "Rednerliste"},
	"no halls":       {"no hall with floor control", "kein Saal mit Rednerliste"},
	"nobody":         {"nobody", "niemand"},
	"left":           {"%s left", "noch %s"},
	"queue":          {"Queue", "Warteschlange"},
	"waiting":        {"%s waiting", "%s warten"},
	"waiting 1":      {"%s waiting", "%s wartet"},
	"recording":      {"Recording", "Aufnahme"},
	"recording flag": {"● recording", "● Aufnahme"},
	"none":           {"none", "keine"},
	"health":         {"Health", "Zustand"},
	"bad share":      {"%s of %s with loss over 2 %% or ping over 200 ms (%s)", "%s von %s mit über 2 %% Verlust oder über 200 ms Ping (%s)"},
	"cpu":            {"CPU %s of a core", "CPU %s eines Kerns"},
	"memory":         {"memory %s", "Speicher %s"},
	"cpu unknown":    {"CPU and memory after the first 10 s", "CPU und Speicher nach den ersten 10 s"},

	"charts":         {"History", "Verlauf"},
	"last hour":      {"last hour", "letzte Stunde"},
	"whole session":  {"whole session", "ganze Sitzung"},
	"no data":        {"no data yet", "noch keine Daten"},
	"chart people":   {"Participants", "Teilnehmende"},
	"chart talking":  {"Talking at once (most in 10 s)", "Gleichzeitig sprechend (höchstens, je 10 s)"},
	"chart voice":    {"Voice packets per second", "Sprachpakete pro Sekunde"},
	"chart bad":      {"Bad connections", "Schlechte Verbindungen"},
	"chart cpu":      {"Server CPU, % of one core", "Server-CPU, % eines Kerns"},
	"unit people":    {"people", "Personen"},
	"unit packets":   {"packets/s", "Pakete/s"},
	"unit percent":   {"%", "%"},
	"series in":      {"in", "ein"},
	"series out":     {"out", "aus"},
	"series dropped": {"dropped", "verworfen"},

	"channels":        {"Channels", "Kanäle"},
	"members":         {"%s members", "%s Mitglieder"},
	"members 1":       {"%s member", "%s Mitglied"},
	"talking count":   {"%s talking", "%s sprechen"},
	"talking count 1": {"%s talking", "%s spricht"},
	"bad count":       {"%s bad connections", "%s schlechte Verbindungen"},
	"bad count 1":     {"%s bad connection", "%s schlechte Verbindung"},
	"show members":    {"show members", "Mitglieder zeigen"},
	"hide members":    {"hide", "verbergen"},
	"mixed":           {"(mixed)", "(gemischt)"},
	"everyone muted":  {"everyone muted", "alle stummgeschaltet"},
	"minutes":         {"Minutes: turns on the floor", "Protokoll: Wortbeiträge"},
	"from":            {"from", "ab"},
	"speaker":         {"speaker", "Person"},
	"length":          {"length", "Dauer"},
	"name":            {"name", "Name"},
	"channel":         {"channel", "Kanal"},
	"voice":           {"voice", "Sprache"},
	"ping":            {"ping", "Ping"},
	"loss":            {"loss", "Verlust"},
	"talk time":       {"talk time", "Sprechzeit"},
	"floor time":      {"floor time", "Redezeit"},
	"loss detail":     {"from the client %s, to the client %s", "vom Client %s, zum Client %s"},
	"udp ping":        {"UDP ping %s", "UDP-Ping %s"},

	"filter":        {"Filter by name", "Nach Name filtern"},
	"sort":          {"Sort by", "Sortieren nach"},
	"by name":       {"name", "Name"},
	"by loss":       {"loss", "Verlust"},
	"by ping":       {"ping", "Ping"},
	"by talk":       {"talk time", "Sprechzeit"},
	"collapse":      {"Collapse channels with more than", "Kanäle mit mehr als"},
	"collapse unit": {"members", "Mitgliedern einklappen"},
	"apply":         {"Apply", "Anwenden"},
	"show all":      {"Channels", "Kanäle"},
	"show bad":      {"Bad connections (%s)", "Schlechte Verbindungen (%s)"},
	"show talking":  {"Talking (%s)", "Sprechend (%s)"},
	"matches":       {"%s of %s participants", "%s von %s Teilnehmenden"},
	"no matches":    {"Nobody.", "Niemand."},
	"matching":      {"matching “%s”", "passend zu „%s“"},
	"all bad":       {"with a bad connection", "mit schlechter Verbindung"},
	"all talking":   {"talking now", "sprechen gerade"},

	"token title":   {"Plenum status", "Plenum-Status"},
	"token wrong":   {"That is not the admin token.", "Das ist nicht das Admin-Token."},
	"token explain": {"The status page is for the server's operator. Open it once with the admin token: it is <code>admin_token</code> in the server's configuration or, when that is not set, in the file <code>admin_token</code> in the server's data directory.", "Die Statusseite ist für den Betrieb des Servers. Öffnen Sie sie einmal mit dem Admin-Token: Es steht als <code>admin_token</code> in der Konfiguration des Servers oder, wenn dort keins gesetzt ist, in der Datei <code>admin_token</code> im Datenverzeichnis des Servers."},
	"token field":   {"admin token", "Admin-Token"},
	"token open":    {"Open", "Öffnen"},
}

// t is the text for key in l; a key missing from the table shows as
// ⟦key⟧, which the tests look for.
func (l lang) t(key string) string {
	if tx, ok := texts[key]; ok {
		return tx[l]
	}
	return "⟦" + key + "⟧"
}

// count formats the text for key with the number n, in the singular
// (key+" 1") when n is 1 and the table has one.
func (l lang) count(key string, n int) string {
	if _, ok := texts[key+" 1"]; ok && n == 1 {
		key += " 1"
	}
	return fmt.Sprintf(l.t(key), l.int(n))
}

// int formats n with the language's thousands separator.
func (l lang) int(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	sep := [...]string{",", "."}[l]
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + sep + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// float formats v with decimals places and the language's decimal mark.
func (l lang) float(v float64, decimals int) string {
	if decimals == 0 {
		return l.int(int(math.Round(v)))
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if l == german {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// ms formats a time in milliseconds: to a tenth below 10 ms, so that a
// ping on a LAN does not read as 0.
func (l lang) ms(v float64) string {
	if v < 10 {
		return l.float(v, 1) + " ms"
	}
	return l.float(v, 0) + " ms"
}

// pct formats a percentage.
func (l lang) pct(v float64) string { return l.float(v, 1) + " %" }

// bytes formats a size in MiB.
func (l lang) bytes(n uint64) string { return l.int(int(n>>20)) + " MiB" }

// clock formats a duration as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return strconv.Itoa(s/3600) + ":" + twoDigits((s/60)%60) + ":" + twoDigits(s%60)
	}
	return strconv.Itoa(s/60) + ":" + twoDigits(s%60)
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}
