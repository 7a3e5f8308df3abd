package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FileError reports a problem at a line of a config file.
type FileError struct {
	File string
	Line int
	Msg  string
}

func (e *FileError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// FieldError reports an invalid setting. Key is the dotted YAML key and
// Env the environment variable that overrides it, if any.
type FieldError struct {
	Key string
	Env string
	Msg string
}

func (e *FieldError) Error() string {
	if e.Env == "" {
		return e.Key + ": " + e.Msg
	}
	return fmt.Sprintf("%s (%s): %s", e.Key, e.Env, e.Msg)
}

// Load returns the configuration built from defaults, the YAML file and
// the environment, in increasing precedence, and validated. file is the
// --config flag value; if empty, AKOSHA_CONFIG names the file; if that is
// empty too, only defaults and environment are used.
func Load(file string) (*Config, error) {
	if file == "" {
		file = os.Getenv("AKOSHA_CONFIG")
	}
	if file == "" {
		return Parse("", nil)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(file, data)
}

// Parse is Load with the file's contents given as data; name is used in
// error messages. An empty name with nil data means no file.
func Parse(name string, data []byte) (*Config, error) {
	c := defaults()
	if name != "" || data != nil {
		if err := c.decodeFile(name, data); err != nil {
			return nil, err
		}
	}
	if err := c.applyEnv(); err != nil {
		return nil, err
	}
	if err := c.resolve(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeFile applies the YAML document data to c. It rejects unknown and
// duplicate keys and values of the wrong type, naming file, line and key.
func (c *Config) decodeFile(file string, data []byte) error {
	var doc, extra yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse %s: %w", file, err)
	}
	if err := dec.Decode(&extra); err == nil {
		return &FileError{file, extra.Line, "a config file holds one YAML document; found a second (---)"}
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse %s: %w", file, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	d := decoder{file: file, c: c, leaves: map[string]field{}, sections: map[string]bool{}}
	for _, f := range c.fields() {
		d.leaves[f.key] = f
		for k := f.key; strings.Contains(k, "."); {
			k = k[:strings.LastIndex(k, ".")]
			d.sections[k] = true
		}
	}
	root := deref(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		if root.Tag == "!!null" {
			return nil // only comments
		}
		return &FileError{file, root.Line, "top level must be a mapping"}
	}
	d.mapping(root, "")
	return errors.Join(d.errs...)
}

// decoder walks a YAML mapping against the known setting keys.
type decoder struct {
	file     string
	c        *Config
	leaves   map[string]field
	sections map[string]bool
	errs     []error
}

func (d *decoder) fail(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &FileError{d.file, n.Line, fmt.Sprintf(format, args...)})
}

func (d *decoder) mapping(n *yaml.Node, prefix string) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		key := prefix + k.Value
		if strings.Contains(k.Value, ".") {
			d.fail(k, "key %q contains a dot: nest it (storage:\n  warm:\n    path: ...)", key)
			continue
		}
		if seen[key] {
			d.fail(k, "duplicate key %q", key)
			continue
		}
		seen[key] = true
		if f, ok := d.leaves[key]; ok {
			d.leaf(f, v)
			continue
		}
		if !d.sections[key] {
			d.fail(k, "unknown key %q", key)
			continue
		}
		switch {
		case v.Kind == yaml.MappingNode:
			d.mapping(v, key+".")
		case v.Tag != "!!null":
			d.fail(v, "%s: want a mapping, got %s", key, kindName(v))
		}
	}
}

// leaf sets f from the scalar node v, expanding ${VAR} first. A null value
// (key: or key: null) leaves the default in place.
func (d *decoder) leaf(f field, v *yaml.Node) {
	if v.Kind != yaml.ScalarNode {
		d.fail(v, "%s: want %s, got %s", f.key, typeName(f.v), kindName(v))
		return
	}
	if v.Tag == "!!null" {
		return
	}
	val, err := expandVars(v.Value)
	if err != nil {
		d.fail(v, "%s: %v", f.key, err)
		return
	}
	if err := set(f.v, val); err != nil {
		d.fail(v, "%s: %v", f.key, err)
		return
	}
	d.c.sources[f.key] = "file"
}

// applyEnv overrides c with every set, non-empty environment variable.
func (c *Config) applyEnv() error {
	var errs []error
	for _, f := range c.fields() {
		s := os.Getenv(f.env)
		if f.env == "" || s == "" {
			continue
		}
		if err := set(f.v, s); err != nil {
			errs = append(errs, &FieldError{f.key, f.env, fmt.Sprintf("environment variable %s: %v", f.env, err)})
			continue
		}
		c.sources[f.key] = "env"
	}
	return errors.Join(errs...)
}

// resolve expands ~ in paths, fills unset paths from DataDir and
// normalises the log level.
func (c *Config) resolve() error {
	var errs []error
	if c.DataDir == "" {
		c.DataDir = defaults().DataDir
		delete(c.sources, "data_dir")
	}
	fields := c.fields()
	for _, f := range fields {
		if f.path == "" || f.v.String() == "" {
			continue
		}
		p, err := expandHome(f.v.String())
		if err != nil {
			errs = append(errs, &FieldError{f.key, f.env, err.Error()})
			continue
		}
		if filepath.IsAbs(p) {
			// The path checked for isolation is the path used: cleaning resolves ".."
			// textually, where the OS would follow a symlink first.
			p = filepath.Clean(p)
		}
		f.v.SetString(p)
	}
	for _, f := range fields {
		if f.derive != "" && f.v.String() == "" {
			f.v.SetString(filepath.Join(c.DataDir, f.derive))
			delete(c.sources, f.key)
		}
	}
	c.Logging.Level = strings.ToLower(c.Logging.Level)
	return errors.Join(errs...)
}

// set parses s into v according to v's kind.
func set(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(n)
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandVars replaces each ${VAR} in s with the value of VAR, and each
// ${VAR:-default} with VAR's value or, when VAR is unset or empty, default.
// A ${VAR} whose variable is unset is an error: it would silently turn
// "${DATA_ROOT}/akosha" into "/akosha".
func expandVars(s string) (string, error) {
	var missing []string
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		v, ok := os.LookupEnv(sub[1])
		switch {
		case sub[2] != "" && v == "":
			return sub[3]
		case !ok:
			missing = append(missing, sub[1])
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set (use ${%s:-default} for an optional one)", strings.Join(missing, ", "), missing[0])
	}
	return out, nil
}

// expandHome replaces a leading "~" or "~/" with the user's home directory.
func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %q: %w", p, err)
	}
	return filepath.Join(home, p[1:]), nil
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func typeName(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64:
		return "an integer"
	default:
		return "a string"
	}
}
