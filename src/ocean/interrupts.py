"""Ctrl-C reaches every task, however it was started.

A shell without job control starts a background job (`cmd &` in a script, many CI
runners) with SIGINT ignored, and Python then never installs its KeyboardInterrupt
handler. A deploy started so could not be interrupted: `down --force` sent it Ctrl-C,
waited 120 s and gave up with the stack left running. Every task restores the handler
at start; an interrupted deploy then rolls back as on any Ctrl-C.
"""

from __future__ import annotations

import signal
import threading


def restore_ctrl_c() -> bool:
    """SIGINT raises KeyboardInterrupt again in this process if it was inherited
    ignored; returns whether it was. (Only the main thread may set a handler.)"""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return False
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return True
