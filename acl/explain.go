package acl

import (
	"fmt"
	"strings"
)

// StepKind says what a Step of an Explanation is.
type StepKind int

const (
	StepDefault   StepKind = iota // evaluation starts from the default grant
	StepSuperUser                 // SuperUser: fixed set, nothing evaluated
	StepReset                     // a channel with inherit_acl=false restarts from the default grant
	StepEntry                     // an entry on the path (Matched says whether it matched)
	StepCutOff                    // neither Traverse nor Write after this channel: None
	StepWrite                     // Write adds WriteImplies (and RootOnly on root)
)

// Step is one thing that happened while evaluating.
type Step struct {
	Kind    StepKind
	Channel uint32 // the channel the step happened on
	Index   int    // StepEntry: the entry's index in its channel's Entries
	Entry   Entry  // StepEntry: a copy of the entry
	// Matched reports whether the entry matched the user. Non-matching
	// entries are listed only when they mention the asked permission,
	// Traverse or Write, to answer "why not".
	Matched  bool
	Applies  bool       // the entry's allow/deny reached the result (here/subs)
	RootOnly Permission // root-only bits the entry granted
	Why      string     // why the entry matched or not, e.g. "member of speakers via add on Plenary (3)"
	// Before and After are the permissions before and after the step;
	// Traverse and Write the tracking flags after it.
	Before, After   Permission
	Traverse, Write bool
}

// Explanation is the answer to "why may (or may not) s do p in channel".
type Explanation struct {
	Subject   Subject
	Channel   uint32
	Asked     Permission
	SuperUser bool
	Steps     []Step
	Granted   Permission // the effective permissions, as Permissions returns them
	Allowed   bool       // Granted has some bit of Asked, as Murmur's hasPermission tests
	// Decisive is the index in Steps of the last step that changed a bit of
	// Asked, or -1 when the default grant decided.
	Decisive int

	tree Tree
}

func (ex *Explanation) add(s Step) { ex.Steps = append(ex.Steps, s) }

// Explain evaluates like Permissions and records every step: each entry on
// the path that matched s (or failed to, when it mentions p, Traverse or
// Write), with the group membership that decided it, resets by
// inherit_acl=false, the traverse cut-off, Write's implications, SuperUser,
// and the verdict. It is for administrators and slow by design.
func Explain(t ACLTree, s *Subject, channel uint32, p Permission) *Explanation {
	ex := &Explanation{Subject: *s, Channel: channel, Asked: p, Decisive: -1, tree: t}
	ex.Granted = evaluate(t, s, channel, ex)
	ex.Allowed = ex.Granted&p != 0
	for i, st := range ex.Steps {
		if st.Kind != StepDefault && st.Before&p != st.After&p {
			ex.Decisive = i
		}
		if st.Kind == StepSuperUser {
			ex.Decisive = i
		}
	}
	return ex
}

// Verdict is the one-line answer, naming the deciding step.
func (ex *Explanation) Verdict() string {
	var b strings.Builder
	if ex.Allowed {
		b.WriteString("ALLOWED: ")
	} else {
		b.WriteString("DENIED: ")
	}
	fmt.Fprintf(&b, "%v in %s (effective %v)", ex.Asked, channelName(ex.tree, ex.Channel), ex.Granted)
	if ex.Decisive < 0 {
		if ex.Allowed {
			b.WriteString("; granted by the default grant, and no entry changed that")
		} else {
			b.WriteString("; not in the default grant, and no matching entry grants it")
		}
		return b.String()
	}
	st := ex.Steps[ex.Decisive]
	b.WriteString("; decided by ")
	b.WriteString(ex.describe(st))
	if st.Kind == StepWrite {
		if w := ex.lastChange(Write, ex.Decisive); w >= 0 {
			b.WriteString(", Write from ")
			b.WriteString(ex.describe(ex.Steps[w]))
		}
	}
	if st.Kind == StepCutOff {
		if w := ex.lastFlag(ex.Decisive); w >= 0 {
			b.WriteString(", Traverse last denied by ")
			b.WriteString(ex.describe(ex.Steps[w]))
		}
	}
	return b.String()
}

// lastChange returns the last step before end that changed a bit of p.
func (ex *Explanation) lastChange(p Permission, end int) int {
	for i := end - 1; i >= 0; i-- {
		st := ex.Steps[i]
		if st.Kind != StepDefault && st.Before&p != st.After&p {
			return i
		}
	}
	return -1
}

// lastFlag returns the last matching entry before end that denied Traverse.
func (ex *Explanation) lastFlag(end int) int {
	for i := end - 1; i >= 0; i-- {
		st := ex.Steps[i]
		if st.Kind == StepEntry && st.Matched && st.Entry.Deny&Traverse != 0 {
			return i
		}
	}
	return -1
}

func (ex *Explanation) describe(st Step) string {
	switch st.Kind {
	case StepSuperUser:
		return "SuperUser (user id 0), who gets every permission except Speak and Whisper without any ACL"
	case StepReset:
		return "inherit_acl=false on " + channelName(ex.tree, st.Channel)
	case StepCutOff:
		return "the traverse rule: no Traverse and no Write after " + channelName(ex.tree, st.Channel)
	case StepWrite:
		return "Write, which implies " + WriteImplies.String() + rootSuffix(st.Channel)
	case StepEntry:
		return fmt.Sprintf("entry #%d on %s (%s)", st.Index, channelName(ex.tree, st.Channel), entrySummary(st.Entry))
	}
	return "the default grant"
}

func rootSuffix(ch uint32) string {
	if ch == rootChannel {
		return " and, on root, " + RootOnly.String()
	}
	return ""
}

func entrySummary(e Entry) string {
	var who string
	if e.UserID != -1 {
		who = fmt.Sprintf("user %d", e.UserID)
	} else {
		who = "@" + e.Group
	}
	var where []string
	if e.ApplyHere {
		where = append(where, "here")
	}
	if e.ApplySubs {
		where = append(where, "subs")
	}
	if len(where) == 0 {
		where = append(where, "nowhere")
	}
	return fmt.Sprintf("%s, %s, allow %v, deny %v", who, strings.Join(where, "+"), e.Allow, e.Deny)
}

// String renders the explanation for `plenum acl explain`.
func (ex *Explanation) String() string {
	var b strings.Builder
	who := ex.Subject.Name
	if who == "" {
		who = fmt.Sprintf("session %d", ex.Subject.Session)
	}
	reg := "unregistered"
	if ex.Subject.UserID >= 0 {
		reg = fmt.Sprintf("user id %d", ex.Subject.UserID)
	}
	fmt.Fprintf(&b, "%s (%s, in %s) asking for %v in %s\n", who, reg, channelName(ex.tree, ex.Subject.Channel),
		ex.Asked, channelName(ex.tree, ex.Channel))
	for i, st := range ex.Steps {
		mark := "  "
		if i == ex.Decisive {
			mark = "=>"
		}
		switch st.Kind {
		case StepDefault:
			fmt.Fprintf(&b, "%s start with the default grant: %v\n", mark, st.After)
		case StepEntry:
			if !st.Matched {
				fmt.Fprintf(&b, "%s %s: does not match: %s\n", mark, ex.describe(st), st.Why)
				continue
			}
			effect := "applies"
			switch {
			case !st.Applies && st.RootOnly == 0:
				effect = "matches but does not apply here (" + applyReason(st) + "); only its Traverse/Write flags count"
			case !st.Applies:
				effect = "grants root-only bits " + st.RootOnly.String()
			}
			fmt.Fprintf(&b, "%s %s: matches: %s; %s", mark, ex.describe(st), st.Why, effect)
			if st.Before != st.After {
				fmt.Fprintf(&b, "; now %v", st.After)
			}
			fmt.Fprintf(&b, " [traverse=%v write=%v]\n", st.Traverse, st.Write)
		default:
			fmt.Fprintf(&b, "%s %s: now %v\n", mark, ex.describe(st), st.After)
		}
	}
	b.WriteString(ex.Verdict())
	b.WriteByte('\n')
	return b.String()
}

func applyReason(st Step) string {
	if st.Entry.ApplyHere {
		return "apply_here only, on an ancestor"
	}
	return "apply_subs only, on the channel itself"
}
