"""Suite-wide set-up.

Several tests interrupt a harness process with SIGINT and check that it stops cleanly (exit 130, nothing left
behind). A process started in the background by a non-interactive shell (`cmd &`, as some CI runners and `nohup`
do) inherits SIGINT as *ignored*, and Python then never installs its KeyboardInterrupt handler, neither in pytest
nor in the processes the tests start: the interrupt would be silently dropped and those tests would fail for a
reason that has nothing to do with the harness. A caught signal is reset to its default when a child execs, so
giving pytest the normal handler restores Ctrl-C for every process the tests start.
"""
import signal

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
