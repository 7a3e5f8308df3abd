package workflows

import (
	"testing"

	"go.temporal.io/sdk/worker"
)

// TestReplayHistories replays saved workflow histories against the current workflow code:
// a change that breaks determinism for running workflows fails here. Regenerate a history
// with the instructions in starter/integration_test.go (writeHistory).
func TestReplayHistories(t *testing.T) {
	for _, file := range []string{"testdata/checkpoint_history.json", "testdata/backup_history.json", "testdata/restore_history.json"} {
		r := worker.NewWorkflowReplayer()
		Register(r)
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}
