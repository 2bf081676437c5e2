package replica

// SetWaitBelowHook makes reads at a timestamp call f when they start
// waiting for the writes below them; for tests.
func SetWaitBelowHook(f func()) { testHookWaitBelow = f }
