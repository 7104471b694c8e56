package admin

// What the desk chose to see, and the status arranged that way. The
// choice lives in the page's address (so a view can be bookmarked, and
// the event stream renders the same view as the page), and the server
// renders only what is shown: a channel's member rows only when it is
// open, which is what keeps a 1000-member plenary quick.

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// view is the desk's choice, from the query of the page's address:
//
//	q=TEXT          only people whose name contains TEXT (any case)
//	show=bad        only people with a bad connection
//	show=talking    only people talking now
//	sort=loss|ping|talk   people by loss, ping or talk time, worst or most first (default: name)
//	collapse=N      channels with more than N members start collapsed (default 30)
//	t=ID,ID         channels opened or closed against that default
//	range=session   the charts show the whole session (default: the last hour)
//	lang=en|de      the language (default: the browser's)
//
// The collapse size is a setting of the page, not of the server: it
// suits the screen (a tablet wants it smaller than a desk's monitor),
// each viewer may choose their own, and it needs no reload.
type view struct {
	Query    string
	Show     string
	Sort     string
	Collapse int
	Toggled  []uint32
	Session  bool
	Lang     lang
	LangSet  bool // lang came from the address, and links keep it
}

// defaultCollapse is the size over which channels start collapsed: a
// room's worth, what fits on a screen without scrolling far.
const defaultCollapse = 30

// maxQuery bounds the filter text.
const maxQuery = 100

func parseView(r *http.Request) view {
	q := r.URL.Query()
	v := view{
		Query:    strings.TrimSpace(q.Get("q")),
		Show:     q.Get("show"),
		Sort:     q.Get("sort"),
		Collapse: defaultCollapse,
		Session:  q.Get("range") == "session",
		Lang:     chooseLang(r),
		LangSet:  q.Get("lang") == "en" || q.Get("lang") == "de",
	}
	if len(v.Query) > maxQuery {
		v.Query = strings.ToValidUTF8(v.Query[:maxQuery], "")
	}
	if v.Show != "bad" && v.Show != "talking" {
		v.Show = ""
	}
	if v.Sort != "loss" && v.Sort != "ping" && v.Sort != "talk" {
		v.Sort = "name"
	}
	if n, err := strconv.Atoi(q.Get("collapse")); err == nil && n >= 0 && n <= 100000 {
		v.Collapse = n
	}
	for _, s := range strings.Split(q.Get("t"), ",") {
		if id, err := strconv.ParseUint(s, 10, 32); err == nil && !slices.Contains(v.Toggled, uint32(id)) && len(v.Toggled) < 1000 {
			v.Toggled = append(v.Toggled, uint32(id))
		}
	}
	return v
}

// values is the view as a query, without its defaults.
func (v view) values() url.Values {
	q := url.Values{}
	set := func(k, val, def string) {
		if val != def {
			q.Set(k, val)
		}
	}
	set("q", v.Query, "")
	set("show", v.Show, "")
	set("sort", v.Sort, "name")
	set("collapse", strconv.Itoa(v.Collapse), strconv.Itoa(defaultCollapse))
	if len(v.Toggled) > 0 {
		ids := make([]string, len(v.Toggled))
		for i, id := range v.Toggled {
			ids[i] = strconv.FormatUint(uint64(id), 10)
		}
		q.Set("t", strings.Join(ids, ","))
	}
	if v.Session {
		q.Set("range", "session")
	}
	if v.LangSet {
		q.Set("lang", v.Lang.code())
	}
	return q
}

// link is the page's address for the view changed by change.
func (v view) link(change func(*view)) string {
	v.Toggled = slices.Clone(v.Toggled)
	change(&v)
	if q := v.values().Encode(); q != "" {
		return "/?" + q
	}
	return "/"
}

// filtering reports whether the view lists matching people rather than
// channels.
func (v view) Filtering() bool { return v.Query != "" || v.Show != "" }

func (v view) matches(u UserStatus) bool {
	switch {
	case v.Show == "bad" && !u.Bad(), v.Show == "talking" && !u.Talking:
		return false
	}
	return v.Query == "" || strings.Contains(strings.ToLower(u.Name), strings.ToLower(v.Query))
}

// open reports whether a channel of n members shows its members.
func (v view) open(id uint32, n int) bool {
	return (n <= v.Collapse) != slices.Contains(v.Toggled, id)
}

// toggle is the link that opens or closes the channel id.
func (v view) toggle(id uint32) string {
	return v.link(func(v *view) {
		if i := slices.Index(v.Toggled, id); i >= 0 {
			v.Toggled = slices.Delete(v.Toggled, i, i+1)
		} else {
			v.Toggled = append(v.Toggled, id)
		}
	})
}

// compareUsers orders people for the view: by name naturally, or the
// worst loss or ping or the most talk time first, people without the
// figure last, and by name among equals.
func (v view) compareUsers(a, b UserStatus) int {
	worstFirst := func(x, y *float64) int {
		switch {
		case x == nil && y == nil:
			return 0
		case x == nil:
			return 1
		case y == nil:
			return -1
		case *x > *y:
			return -1
		case *x < *y:
			return 1
		}
		return 0
	}
	var c int
	switch v.Sort {
	case "loss":
		c = worstFirst(a.LossPct, b.LossPct)
	case "ping":
		c = worstFirst(a.PingMs, b.PingMs)
	case "talk":
		c = worstFirst(&a.TalkSec, &b.TalkSec)
	}
	if c != 0 {
		return c
	}
	return naturalCompare(a.Name, b.Name)
}

// pageModel is the status arranged as the view says, for the templates.
type pageModel struct {
	Name     string
	L        lang
	V        view
	St       Status
	Channels []channelView
	// With a filter: the matching people of every channel, and the
	// channel each is in.
	Matches []matchRow
	Charts  []chartView
	// Links are the addresses of the other views the page offers.
	Links map[string]string
}

type channelView struct {
	ChannelStatus
	Open          bool
	Talking, Bad  int
	Rows          []UserStatus // sorted; only when open
	Toggle, Label string
}

type matchRow struct {
	Channel ChannelRef
	User    UserStatus
}

type chartView struct {
	ID  string
	SVG any
}

// arrange builds the page model of st for v.
func arrange(name string, st Status, v view, h *History) *pageModel {
	m := &pageModel{Name: name, L: v.Lang, V: v, St: st, Links: links(v)}
	if v.Filtering() {
		for _, cs := range st.Channels {
			for _, u := range cs.Users {
				if v.matches(u) {
					m.Matches = append(m.Matches, matchRow{ChannelRef{cs.ID, cs.Path}, u})
				}
			}
		}
		slices.SortStableFunc(m.Matches, func(a, b matchRow) int { return v.compareUsers(a.User, b.User) })
	} else {
		for _, cs := range st.Channels {
			m.Channels = append(m.Channels, arrangeChannel(cs, v))
		}
	}
	if h != nil {
		samples, from, to := chartRange(h, v.Session, st.Time)
		for _, c := range charts {
			m.Charts = append(m.Charts, chartView{ID: c.id, SVG: chartSVG(c, samples, from, to, v.Lang)})
		}
	}
	return m
}

// links are the views the page links to, from v.
func links(v view) map[string]string {
	people := func(show, sort string) string {
		return v.link(func(v *view) { v.Query, v.Show, v.Sort = "", show, sort })
	}
	return map[string]string{
		"all":       people("", v.Sort),
		"bad":       people("bad", "loss"),
		"talking":   people("talking", v.Sort),
		"hour":      v.link(func(v *view) { v.Session = false }),
		"session":   v.link(func(v *view) { v.Session = true }),
		"en":        v.link(func(v *view) { v.Lang, v.LangSet = english, true }),
		"de":        v.link(func(v *view) { v.Lang, v.LangSet = german, true }),
		"sort name": v.link(func(v *view) { v.Sort = "name" }),
		"sort loss": v.link(func(v *view) { v.Sort = "loss" }),
		"sort ping": v.link(func(v *view) { v.Sort = "ping" }),
		"sort talk": v.link(func(v *view) { v.Sort = "talk" }),
	}
}

func arrangeChannel(cs ChannelStatus, v view) channelView {
	cv := channelView{ChannelStatus: cs, Open: v.open(cs.ID, len(cs.Users)), Toggle: v.toggle(cs.ID)}
	for _, u := range cs.Users {
		if u.Talking {
			cv.Talking++
		}
		if u.Bad() {
			cv.Bad++
		}
	}
	if cv.Open {
		cv.Rows = slices.Clone(cs.Users)
		slices.SortFunc(cv.Rows, v.compareUsers)
	}
	return cv
}

// seconds makes a duration of a number of seconds.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
