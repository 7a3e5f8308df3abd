package config

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// Setting is one resolved setting as shown by `config show`.
type Setting struct {
	Key    string `json:"key"`           // dotted YAML key
	Env    string `json:"env,omitempty"` // overriding environment variable, or ""
	Value  string `json:"value"`         // "(set)" or "(unset)" for secrets
	Source string `json:"source"`        // "env", "file" or "default"
	Secret bool   `json:"secret,omitempty"`
}

// Settings returns every setting of c in struct order. Secret values are
// never included: they read "(set)" or "(unset)".
func (c *Config) Settings() []Setting {
	fields := c.fields()
	out := make([]Setting, 0, len(fields))
	for _, f := range fields {
		s := Setting{Key: f.key, Env: f.env, Source: c.Source(f.key), Secret: f.secret}
		switch {
		case !f.secret:
			s.Value = fmt.Sprint(f.v.Interface())
		case f.v.String() != "":
			s.Value = "(set)"
		default:
			s.Value = "(unset)"
		}
		out = append(out, s)
	}
	return out
}

// WriteSettings writes s to w as "table" (aligned KEY VALUE SOURCE ENV
// columns) or "json" (an indented array).
func WriteSettings(w io.Writer, s []Setting, format string) error {
	switch format {
	case "table":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE\tENV")
		for _, x := range s {
			env := x.Env
			if env == "" {
				env = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Key, x.Value, x.Source, env)
		}
		return tw.Flush()
	case "json":
		if s == nil {
			s = []Setting{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	default:
		return fmt.Errorf("unknown settings format %q (want table or json)", format)
	}
}
