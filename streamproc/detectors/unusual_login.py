"""unusual_login: a successful login from a network (IPv4 /24, IPv6 /48) or a ``country`` not
seen for that username in the last 30 days, once the user has >= 3 earlier successes.

    alice's successes:  10.1.2.x  10.1.2.x  10.1.2.x  ...  198.51.100.x (new /24)
    ----------|<------------------ 30 days ------------------>|--------> event time
                                            3 earlier successes ^ FIRE (medium)

History per user: for every network and country seen, the latest success time and how many
successes it accounts for. Entries older than the lookback are forgotten, so "earlier
successes" counts the successes of networks still in the 30-day history. The country rule only
applies once the user has a country in that history: a producer that starts geolocating must
not make every user look unusual once.

Networks are computed with ``ipaddress`` (IPv4-mapped IPv6 counts as IPv4), cached per
address. The login that fired is recorded as seen, so one new network alerts once.
"""

from __future__ import annotations

from itertools import compress
from typing import Any

from ..alerts import Alert
from ..events import Event
from ._common import (
    Interner,
    Sweeper,
    cached_network,
    clip,
    iso,
    network_of,
    sample_of,
    succeeded,
)
from ._windows import KeyedState
from .base import Detector, Prefilter, register
from .columns import EventBatch

_SAMPLE_FIELDS = ("username", "ip_address", "user_agent", "country")
_COUNTRY = "#"  # tag prefix of a country entry (a network never starts with '#')
_AFTER_COUNTRY = chr(ord(_COUNTRY) + 1)  # no string that begins with _COUNTRY sorts after


@register
class UnusualLogin(Detector):
    kind = "unusual_login"
    family = "auth-logs"
    severity = "medium"
    defaults = {
        "lookback": 30 * 86400.0,
        "min_history": 3,
        "check_network": True,
        "check_country": True,
    }
    colocate = ("username",)

    def __init__(self, params: dict[str, Any] | None = None, ctx: Any = None) -> None:
        super().__init__(params, ctx)
        self.lookback = float(self.params["lookback"])
        self.min_history = int(self.params["min_history"])
        self.check_network = bool(self.params["check_network"])
        self.check_country = bool(self.params["check_country"])
        # username -> flat list [tag, latest time, successes, tag, latest, successes, ...]
        self.state: KeyedState[str, list[Any]] = KeyedState(self.ctx.key_cap)
        self._intern = Interner()
        self._ctags: dict[str, str] = {}  # raw country value -> its tag
        self._sweeper = Sweeper(min(self.lookback / 30, 86400.0))

    def prefilter(self) -> Prefilter:
        return succeeded  # failures neither teach nor surprise it

    reads_columns = True
    #: a user's one network and country seen again updated without walking the history;
    #: False: every success walks it (the tests' reference)
    common_case = True

    def process(self, events: list[Event]) -> list[Alert]:
        return self.judge_batch(EventBatch(events))

    def judge_batch(self, batch: EventBatch) -> list[Alert]:
        users, success = batch.column("username"), batch.column("success")
        rows = list(compress(range(len(users)), success))
        if not rows:
            return []
        self.evaluations += len(rows)
        if self.common_case:
            # the users in the order of their last success here: the recency they end with
            recent = list(dict.fromkeys(map(users.__getitem__, reversed(rows))))
            recent.reverse()
            if len(self.state) + len(recent) <= self.state.cap:
                return self._judge_users(batch, rows, recent)
        # a user may be evicted: which one depends on the order of every touch
        return self._judge_rows(batch, rows)

    def _judge_rows(self, batch: EventBatch, rows: list[int]) -> list[Alert]:
        """The successes at ``rows``, each touching its user where it is."""
        alerts: list[Alert] = []
        get, touch = self.state.get, self.state.touch
        lookback = self.lookback
        ctags = self._ctags
        common_case = self.common_case
        users, ips = batch.column("username"), batch.column("ip_address")
        countries, times = batch.column("country"), batch.times
        for row in rows:
            user = users[row]
            ts = times[row]
            net = network_of(ips[row])
            country = countries[row]
            if country:
                ctag = ctags.get(country)
                if ctag is None:
                    ctag = self._country_tag(country)
            else:
                ctag = None
            hist = get(user)
            if hist is None:
                hist = [net, ts, 1]
                if ctag is not None:
                    hist += [ctag, ts, 1]
                touch(user, hist)
                continue
            touch(user, hist)
            horizon = ts - lookback
            # The common case, a user's one network (and country) again: nothing to forget,
            # nothing new, so nothing to fire; the entries are updated as ``_walk`` does.
            if (
                common_case
                and len(hist) == (3 if ctag is None else 6)
                and hist[0] == net
                and hist[1] >= horizon
                and net[:1] != _COUNTRY
            ):
                if ctag is None:
                    if ts > hist[1]:
                        hist[1] = ts
                    hist[2] += 1
                    continue
                if hist[3] == ctag and hist[4] >= horizon:
                    if ts > hist[1]:
                        hist[1] = ts
                    hist[2] += 1
                    if ts > hist[4]:
                        hist[4] = ts
                    hist[5] += 1
                    continue
            alert = self._walk(user, hist, net, ctag, ts, horizon, batch, row)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _judge_users(self, batch: EventBatch, rows: list[int], recent: list[str]) -> list[Alert]:
        """``_judge_rows`` where no user can be evicted (the caller checked): a user's
        recency is put back once, after the batch (``recent``: the users in the order of
        their last success here), as touching it at each success leaves it. The columns are
        read in C (``compress``), and a network in the cache without calling ``network_of``."""
        alerts: list[Alert] = []
        state = self.state
        get, add = state.get, state.add_unordered
        lookback = self.lookback
        ctags = self._ctags
        cached_net = cached_network
        success = batch.column("success")
        for row, user, ip, country, ts in zip(
            rows,
            compress(batch.column("username"), success),
            compress(batch.column("ip_address"), success),
            compress(batch.column("country"), success),
            compress(batch.times, success),
            strict=True,
        ):
            net = cached_net(ip)
            if net is None:
                net = network_of(ip)
            if country:
                ctag = ctags.get(country)
                if ctag is None:
                    ctag = self._country_tag(country)
            else:
                ctag = None
            hist = get(user)
            if hist is None:
                add(user, [net, ts, 1] if ctag is None else [net, ts, 1, ctag, ts, 1])
                continue
            horizon = ts - lookback
            # The common case of ``_judge_rows``. A network that begins with "#" is one that
            # sorts from "#" up to "$": two comparisons test it without slicing a string.
            if ctag is None:
                if (
                    len(hist) == 3
                    and hist[0] == net
                    and hist[1] >= horizon
                    and (net >= _AFTER_COUNTRY or net < _COUNTRY)
                ):
                    if ts > hist[1]:
                        hist[1] = ts
                    hist[2] += 1
                    continue
            elif (
                len(hist) == 6
                and hist[0] == net
                and hist[3] == ctag
                and hist[1] >= horizon
                and hist[4] >= horizon
                and (net >= _AFTER_COUNTRY or net < _COUNTRY)
            ):
                if ts > hist[1]:
                    hist[1] = ts
                hist[2] += 1
                if ts > hist[4]:
                    hist[4] = ts
                hist[5] += 1
                continue
            # A user of several networks or countries, this one's seen before and nothing to
            # forget: nothing new, so nothing to fire; the entries are updated as ``_walk``
            # updates them. A network's entry is the only one of its tag (it is added only
            # when there is none); a country's may share its tag with a network that reads
            # like one ("#DE", no address), and ``_walk`` then updates the last: not here.
            if net[:1] != _COUNTRY and hist and min(hist[1::3]) >= horizon:
                try:
                    net_at = hist.index(net)
                    ctag_at = -1 if ctag is None else hist.index(ctag)
                except ValueError:
                    pass  # new: judged by the walk
                else:
                    if ctag_at < 0 or hist.count(ctag) == 1:
                        if ts > hist[net_at + 1]:
                            hist[net_at + 1] = ts
                        hist[net_at + 2] += 1
                        if ctag_at >= 0:
                            if ts > hist[ctag_at + 1]:
                                hist[ctag_at + 1] = ts
                            hist[ctag_at + 2] += 1
                        continue
            alert = self._walk(user, hist, net, ctag, ts, horizon, batch, row)
            if alert is not None:
                alerts.append(alert)
        state.refresh(recent)
        return alerts

    def _walk(
        self,
        user: str,
        hist: list[Any],
        net: str,
        ctag: str | None,
        ts: float,
        horizon: float,
        batch: EventBatch,
        row: int,
    ) -> Alert | None:
        """One success of a known user: forget what is older than ``horizon``, judge what
        is left, then record the success under its network, then its country (if any)."""
        earlier = 0
        net_at = ctag_at = -1
        have_country = False
        i = 0
        while i < len(hist):
            tag, last = hist[i], hist[i + 1]
            if last < horizon:
                del hist[i : i + 3]
                continue
            if tag[0] == _COUNTRY:
                have_country = True
                if tag == ctag:
                    ctag_at = i
            else:
                earlier += hist[i + 2]
                if tag == net:
                    net_at = i
            i += 3
        new_net = self.check_network and net_at < 0
        new_country = self.check_country and ctag is not None and have_country and ctag_at < 0
        alert = None
        if earlier >= self.min_history and (new_net or new_country):
            alert = self._alert(
                user, hist, net, ctag, new_net, new_country, earlier, batch.event(row)
            )
        if net_at < 0:
            hist += [net, ts, 1]
        else:
            if ts > hist[net_at + 1]:
                hist[net_at + 1] = ts
            hist[net_at + 2] += 1
        if ctag is not None:
            if ctag_at < 0:
                hist += [ctag, ts, 1]
            else:
                if ts > hist[ctag_at + 1]:
                    hist[ctag_at + 1] = ts
                hist[ctag_at + 2] += 1
        return alert

    def _country_tag(self, country: str) -> str:
        """The interned history tag of a country value ("#" + its code, upper case),
        remembered per raw value: it is asked for on every successful login."""
        tag = self._intern(_COUNTRY + country.strip().upper())
        if len(self._ctags) >= 4096:  # hostile values must not grow it
            self._ctags.clear()
        self._ctags[country] = tag
        return tag

    def _alert(
        self,
        user: str,
        hist: list[Any],
        net: str,
        ctag: str | None,
        new_net: bool,
        new_country: bool,
        earlier: int,
        ev: Event,
    ) -> Alert:
        known_nets = [hist[i] for i in range(0, len(hist), 3) if hist[i][0] != _COUNTRY]
        known_countries = [hist[i][1:] for i in range(0, len(hist), 3) if hist[i][0] == _COUNTRY]
        country = ctag[1:] if ctag else None
        what = []
        if new_net:
            what.append(f"network {net}")
        if new_country:
            what.append(f"country {country}")
        novelty = " and ".join(what)
        data = ev.data
        return self.make_alert(
            key={"username": user},
            incident=[net, country, ev.ts],
            event_time=ev.ts,
            title=f"Unusual login for {clip(user)} from {novelty}",
            body=(
                f"User {clip(user)} logged in from {clip(data['ip_address'])} ({novelty}), "
                f"not seen for this user in the last {self.lookback / 86400:g} days "
                f"({earlier} earlier successful logins)."
            ),
            evidence={
                "new_network": net if new_net else None,
                "new_country": country if new_country else None,
                "known_networks": known_nets[:10],
                "known_countries": known_countries[:10],
                "earlier_successes": earlier,
                "lookback_seconds": self.lookback,
                "samples": [{"timestamp": iso(ev.ts), **sample_of(data, _SAMPLE_FIELDS)}],
            },
            source=ev.source(),
            labels={"username": clip(user), "ip_address": clip(data["ip_address"])},
        )

    def on_watermark(self, watermark: float) -> list[Alert]:
        if self._sweeper.due(watermark):
            horizon = watermark - self.lookback
            for user, hist in self.state.items():
                if max(hist[1::3]) < horizon:
                    self.state.pop(user)
        return []

    def snapshot(self) -> Any:
        return {
            "users": [[u, list(h)] for u, h in self.state.items()],
            "evictions": self.state.evictions,
        }

    def restore(self, state: Any) -> None:
        for user, hist in state.get("users", []):
            self.state.touch(user, [self._intern(x) if isinstance(x, str) else x for x in hist])
        self.state.evictions = int(state.get("evictions", 0))
