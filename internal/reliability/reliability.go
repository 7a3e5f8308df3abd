// Package reliability lets the fault-injection tests write what they saw into
// docs/RELIABILITY.md: `make test-faults` sets AKOSHA_RELIABILITY_OUT, writes the page's
// head, and each test appends a section (a table: fault, what happened, data lost, time
// to recover). Without the variable nothing is written. Only tests import it.
package reliability

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// Env names the file the sections are appended to.
const Env = "AKOSHA_RELIABILITY_OUT"

// Row is one fault and its outcome.
type Row struct {
	Fault, Happened, Lost, Recover string
}

var mu sync.Mutex

// Record appends a section titled title with rows to $AKOSHA_RELIABILITY_OUT, if set. A
// failed test records nothing: the page shows only what passed.
func Record(t testing.TB, title string, rows []Row) {
	t.Helper()
	path := os.Getenv(Env)
	if path == "" || len(rows) == 0 || t.Failed() {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s\n\n| fault | what happened | data lost | time to recover |\n|---|---|---|---|\n", title)
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(r.Fault), cell(r.Happened), cell(r.Lost), cell(r.Recover))
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
