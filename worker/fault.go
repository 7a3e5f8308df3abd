package worker

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
)

// FaultKillEnv names the fault-injection suite's kill point: "<ActivityType>:start" or
// "<ActivityType>:done" makes `akosha worker` kill itself with SIGKILL when that activity
// starts, or when it has done its work but before Temporal has its result — the worst
// moments for a crash. For tests only; never set it in production.
const FaultKillEnv = "AKOSHA_FAULT_KILL"

// KillAt returns an activity fault hook that SIGKILLs this process at point
// ("<ActivityType>:start|done"), the first time it is reached.
func KillAt(point string) (func(activity, phase string), error) {
	name, phase, ok := strings.Cut(point, ":")
	if !ok || name == "" || phase != "start" && phase != "done" {
		return nil, fmt.Errorf("%s=%q: want <ActivityType>:start or <ActivityType>:done", FaultKillEnv, point)
	}
	var fired atomic.Bool
	return func(a, p string) {
		if a == name && p == phase && fired.CompareAndSwap(false, true) {
			fmt.Fprintf(os.Stderr, "fault injection: SIGKILL at %s:%s\n", a, p)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}, nil
}

// faultInterceptor calls fn before each activity of the worker and after each that
// succeeded, before its result goes to Temporal.
type faultInterceptor struct {
	interceptor.WorkerInterceptorBase
	fn func(activity, phase string)
}

func (f *faultInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &faultActivity{fn: f.fn}
	i.Next = next
	return i
}

type faultActivity struct {
	interceptor.ActivityInboundInterceptorBase
	fn func(activity, phase string)
}

func (a *faultActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	name := activity.GetInfo(ctx).ActivityType.Name
	a.fn(name, "start")
	res, err := a.Next.ExecuteActivity(ctx, in)
	if err == nil {
		a.fn(name, "done")
	}
	return res, err
}
