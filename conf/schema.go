package conf

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

var durationType = reflect.TypeFor[Duration]()

// checkSchema compares the raw decoded TOML with the Config struct and reports
// every unknown key and every value of the wrong type or out of range, each
// with its line.
func checkSchema(file string, raw map[string]any, pos positions) []*Error {
	ck := &schemaChecker{file: file, pos: pos}
	ck.table(raw, reflect.TypeFor[Config](), nil, "")
	return ck.errs
}

type schemaChecker struct {
	file string
	pos  positions
	errs []*Error
}

func (ck *schemaChecker) add(concrete []string, display, format string, args ...any) {
	ck.errs = append(ck.errs, &Error{
		File: ck.file,
		Line: ck.pos.near(pathKey(concrete...)),
		Key:  display,
		Msg:  fmt.Sprintf(format, args...),
	})
}

// tomlFields maps the TOML keys of struct type t to its fields.
func tomlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f
	}
	return m
}

func (ck *schemaChecker) table(m map[string]any, t reflect.Type, concrete []string, display string) {
	fields := tomlFields(t)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c := append(append([]string{}, concrete...), k)
		d := k
		if display != "" {
			d = display + "." + k
		}
		f, ok := fields[k]
		if !ok {
			ck.add(c, d, "unknown key")
			continue
		}
		ck.value(m[k], f.Type, c, d)
	}
}

func (ck *schemaChecker) value(v any, t reflect.Type, concrete []string, display string) {
	if t == durationType {
		switch v := v.(type) {
		case string:
			if _, err := parseDuration(v); err != nil {
				ck.add(concrete, display, "%v", err)
			}
		case int64:
		default:
			ck.add(concrete, display, "want a duration such as \"30s\", got %s", tomlTypeName(v))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer: // an optional value: present means set
		ck.value(v, t.Elem(), concrete, display)
	case reflect.String:
		if _, ok := v.(string); !ok {
			ck.add(concrete, display, "want a string, got %s", tomlTypeName(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			ck.add(concrete, display, "want true or false, got %s", tomlTypeName(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			ck.add(concrete, display, "want an integer, got %s", tomlTypeName(v))
		} else if reflect.Zero(t).OverflowInt(n) {
			ck.add(concrete, display, "%d is out of range", n)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(int64)
		switch {
		case !ok:
			ck.add(concrete, display, "want an integer, got %s", tomlTypeName(v))
		case n < 0:
			ck.add(concrete, display, "must not be negative (got %d)", n)
		case reflect.Zero(t).OverflowUint(uint64(n)):
			ck.add(concrete, display, "%d is out of range", n)
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			ck.add(concrete, display, "want a table, got %s", tomlTypeName(v))
			return
		}
		ck.table(m, t, concrete, display)
	case reflect.Map: // a table with free-form keys, e.g. [groups.NAME]
		m, ok := v.(map[string]any)
		if !ok {
			ck.add(concrete, display, "want a table, got %s", tomlTypeName(v))
			return
		}
		for _, k := range sortedKeys(m) {
			c := append(append([]string{}, concrete...), k)
			ck.value(m[k], t.Elem(), c, display+"."+k)
		}
	case reflect.Slice:
		var elems []any
		switch v := v.(type) {
		case []any:
			elems = v
		case []map[string]any:
			for _, e := range v {
				elems = append(elems, e)
			}
		default:
			want := "an array"
			if t.Elem().Kind() == reflect.Struct {
				want = "an array of tables"
			}
			ck.add(concrete, display, "want %s, got %s", want, tomlTypeName(v))
			return
		}
		for i, e := range elems {
			c := append(append([]string{}, concrete...), strconv.Itoa(i))
			ck.value(e, t.Elem(), c, display+"["+strconv.Itoa(i)+"]")
		}
	default:
		ck.add(concrete, display, "unsupported type %s", t) // a bug in the schema
	}
}
