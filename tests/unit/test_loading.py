"""Loading beside traffic: what app.loading changes for the duration of a load, and
that it always puts it back."""

import gc
import os
import sys
import threading

import pytest

from app import loading


def test_polite_load_shares_the_gil_and_pauses_then_restores_everything() -> None:
    interval, enabled = sys.getswitchinterval(), gc.isenabled()
    with loading.loading(polite=True):
        assert not gc.isenabled()
        assert sys.getswitchinterval() == pytest.approx(loading.LOAD_SWITCH_INTERVAL)
        assert isinstance(sys.getprofile(), loading.Pacer)
    assert sys.getprofile() is None
    assert sys.getswitchinterval() == pytest.approx(interval) and gc.isenabled() == enabled


def test_a_failed_load_restores_everything_too() -> None:
    interval = sys.getswitchinterval()
    with pytest.raises(ValueError), loading.loading(polite=True):
        raise ValueError("corrupt version")
    assert sys.getprofile() is None and sys.getswitchinterval() == pytest.approx(interval)
    assert gc.isenabled()


def test_a_load_with_nobody_waiting_runs_at_full_speed() -> None:
    interval = sys.getswitchinterval()
    with loading.loading(polite=False):
        assert not gc.isenabled()
        assert sys.getprofile() is None and sys.getswitchinterval() == pytest.approx(interval)


def test_the_pacer_rests_after_each_run_of_work(monkeypatch: pytest.MonkeyPatch) -> None:
    rests: list[float] = []
    monkeypatch.setattr(loading.time, "sleep", rests.append)
    pacer = loading.Pacer(run=0.0, rest=0.25)
    for _ in range(64 * 3):
        pacer(None, "call", None)
    assert rests == [0.25, 0.25, 0.25]  # checked every 64 calls; run 0: rests at each check
    patient = loading.Pacer(run=3600.0, rest=0.25)
    for _ in range(64 * 3):
        patient(None, "call", None)
    assert len(rests) == 3  # within its run: no rest


def test_the_loader_thread_is_demoted_not_the_caller() -> None:
    seen: list[int] = []

    def demote_and_read() -> None:
        loading.lowest_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=demote_and_read)
    thread.start()
    thread.join()
    assert seen == [loading.LOADER_NICE]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < loading.LOADER_NICE
