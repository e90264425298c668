package gateway

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// shapeChecker walks a YAML document against the type it is to be decoded
// into, before it is decoded, and names each key that is unknown, set
// twice or of the wrong type by its field path
// (tables[0].automations[1].enabled). yaml's own errors give only a line
// number, stop at the first failing custom type (Duration), and quote the
// first characters of the offending value — a secret's too.
//
// A value is quoted only where it is a plain scalar that failed to
// become a number, a boolean or a duration, or an entry where a list of
// non-secret strings is wanted: a single value where a mapping is wanted
// is most likely a misplaced one, perhaps a token or a URL with a
// password, and is never quoted.
type shapeChecker struct {
	problems []string
	// budget bounds the nodes visited, aliases expanded: a file that
	// names an anchor within itself or expands to millions of nodes
	// (billion laughs) is refused rather than walked.
	budget int
	// within holds the anchors being walked, to refuse a cycle.
	within map[*yaml.Node]bool
}

// newShapeChecker returns a checker for a document of size bytes.
func newShapeChecker(size int) *shapeChecker {
	return &shapeChecker{budget: 64*size + 1024, within: map[*yaml.Node]bool{}}
}

var (
	durationType = reflect.TypeFor[Duration]()
	// secretLists are the list fields that hold secrets (verify.secrets)
	// or URLs that may hold a webhook token (http_step_urls).
	secretLists = map[string]bool{"secrets": true, "http_step_urls": true}
)

func (s *shapeChecker) addf(path, format string, args ...any) {
	if path == "" {
		path = "the file"
	}
	s.problems = append(s.problems, path+": "+fmt.Sprintf(format, args...))
}

// spend takes one visit from the budget; false once it is spent, when
// the first call says so.
func (s *shapeChecker) spend(path string) bool {
	if s.budget--; s.budget >= 0 {
		return true
	}
	if s.budget == -1 {
		s.addf(path, "the file's aliases expand to too many values")
	}
	return false
}

// check checks node n, at path, against type t; name is the key n is the
// value of ("" for list entries and the document).
func (s *shapeChecker) check(path, name string, n *yaml.Node, t reflect.Type) {
	if !s.spend(path) {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		if s.within[n.Alias] {
			s.addf(path, "alias *%s names a value that holds it", n.Value)
			return
		}
		s.within[n.Alias] = true
		defer delete(s.within, n.Alias)
		s.check(path, name, n.Alias, t)
		return
	}
	if n.Kind == 0 { // an empty file
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType || t.Kind() != reflect.Struct && t.Kind() != reflect.Slice:
		s.leaf(path, n, t)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode && !secretLists[name] {
				s.addf(path, "%q is a single value, not a list", n.Value)
			} else {
				s.addf(path, "is %s, not a list", kindName(n))
			}
			return
		}
		for i, c := range n.Content {
			s.check(fmt.Sprintf("%s[%d]", path, i), "", c, t.Elem())
		}
	default:
		if n.Kind != yaml.MappingNode {
			s.addf(path, "is %s, not a mapping", kindName(n))
			return
		}
		s.mapping(path, n, t)
	}
}

// mapping checks the keys of mapping n against struct type t, naming a
// key set twice. Keys merged in (<<: *anchor) fill only what the mapping
// does not set itself, the first merged mapping before the next, as yaml
// decodes them: those are overridden, not set twice.
func (s *shapeChecker) mapping(path string, n *yaml.Node, t reflect.Type) {
	set := map[string]int{} // key: its line
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge") {
			merges = append(merges, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			s.addf(joinPath(path, "?"), "a key is %s, not a name", kindName(k))
			continue
		}
		field := joinPath(path, k.Value)
		ft, ok := yamlField(t, k.Value)
		if !ok {
			s.addf(field, "unknown field")
			continue
		}
		if line, dup := set[k.Value]; dup {
			s.addf(field, "set twice (lines %d and %d)", line, k.Line)
			continue
		}
		set[k.Value] = k.Line
		s.check(field, k.Value, v, ft)
	}
	for _, m := range merges {
		if !s.spend(path) {
			return
		}
		m = resolve(m)
		list := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			list = m.Content
		}
		for _, e := range list {
			e = resolve(e)
			if e.Kind != yaml.MappingNode {
				s.addf(joinPath(path, "<<"), "is %s, not a mapping to merge", kindName(e))
				continue
			}
			if s.within[e] {
				s.addf(joinPath(path, "<<"), "merges a mapping that holds it")
				continue
			}
			rest := &yaml.Node{Kind: yaml.MappingNode}
			for i := 0; i+1 < len(e.Content); i += 2 {
				k := e.Content[i]
				if _, done := set[k.Value]; done && k.Kind == yaml.ScalarNode && k.Value != "<<" {
					continue
				}
				set[k.Value] = k.Line
				rest.Content = append(rest.Content, k, e.Content[i+1])
			}
			s.within[e] = true
			s.mapping(path, rest, t)
			delete(s.within, e)
		}
	}
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// leaf checks a scalar field by decoding n alone into a value of type t.
func (s *shapeChecker) leaf(path string, n *yaml.Node, t reflect.Type) {
	if err := n.Decode(reflect.New(t).Interface()); err == nil {
		return
	}
	want := "a string"
	switch {
	case t == durationType:
		want = "a duration such as 500ms, 5s or 3h"
	case t.Kind() == reflect.Bool:
		want = "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		want = "a whole number"
		if n.Kind == yaml.ScalarNode && strings.Trim(strings.TrimLeft(n.Value, "+-"), "0123456789") == "" {
			s.addf(path, "%s is out of range", n.Value)
			return
		}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		want = "a number"
	}
	if n.Kind == yaml.ScalarNode && t.Kind() != reflect.String {
		s.addf(path, "%q is not %s", n.Value, want)
		return
	}
	s.addf(path, "is %s, not %s", kindName(n), want)
}

// kindName names what a node is, without its value.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value (not quoted)"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlField returns the type of the field of struct t whose yaml key is
// key.
func yamlField(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name := yamlKey(f); name == key && name != "-" && f.IsExported() {
			return f.Type, true
		}
	}
	return nil, false
}

// yamlKey is the key a struct field is read from.
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}
