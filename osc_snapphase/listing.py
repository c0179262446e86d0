#   Licensed under the Apache License, Version 2.0 (the "License"); you may
#   not use this file except in compliance with the License. You may obtain
#   a copy of the License at
#
#        http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#   WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#   License for the specific language governing permissions and limitations
#   under the License.

"""The server reads of the engine: Compute API JSON into ServerStates.

No openstacksdk resource is built per server: the bodies go straight from
the JSON of ``GET /servers/{id}`` and ``GET /servers/detail`` into
:class:`~osc_snapphase.records.ServerState` (the one mapping, also used
for the SDK Server that ``show`` reads).

Several servers are read with an incremental listing, Nova's idiom for
polling many servers: a full listing first (page by page), then
``changes-since`` listings, which answer only the servers whose record
changed (a task state change updates it), deleted ones included. The
time asked for comes from the cloud's own clock: the newest ``updated``
seen tells a lower bound of the cloud's time, carried forward by the local
monotonic clock, minus an overlap for clock skew between the cloud's
hosts; a server read again within the overlap is compared with its last
state and dropped if unchanged. A full listing is read again every
RESYNC_INTERVAL and after a transient fault. It computes the time base
afresh (one host whose clock runs fast would otherwise hold it ahead for
the rest of the watch); changes of known servers that it finds and that
the incremental listings missed show a cloud host's clock off by more than
the overlap: the listings then ask further back. A known server that it
no longer shows, without a DELETED record, is read once by ID: gone (404)
is a deletion; found, it no longer matches the filters and leaves the
watch without a DELETED row. While nothing changes, a poll is one request
whose answer lists no server.

Microversion 2.69 and later list the servers of a cell that does not
answer as partial records (status ``UNKNOWN``, no task state): such a
server keeps its last known state until its cell answers again.
"""

import datetime
import time
import urllib.parse

from openstack import exceptions as sdk_exceptions

from osc_snapphase import cloud
from osc_snapphase import engine
from osc_snapphase import records

# Seconds subtracted from the cloud time asked for with changes-since:
# updates stamped by a cloud host whose clock is slightly behind, or
# committed after a later one, are still read.
OVERLAP = 2.0
# Seconds between two full listings.
RESYNC_INTERVAL = 300.0
# Servers asked for per page; Nova answers at most its max_limit (1000 by
# default) and links the next page.
PAGE_SIZE = 1000
SERVERS_PATH = '/servers/detail'
TASK_STATE = 'OS-EXT-STS:task_state'
# What _read_one returns for a server whose cell does not answer.
DOWN = object()


def in_down_cell(body):
    """True for a partial record of a server whose cell does not answer.

    With microversion 2.69 and later Nova shows such a server (listed, or
    read by ID) with status ``UNKNOWN`` and without the OS-EXT-STS task
    state, whatever the policy: not a cloud hiding task states.
    """
    return body.get('status') == 'UNKNOWN' and TASK_STATE not in body


def server_state(body):
    """ServerState from a server as the Compute API shows it (a dict).

    :raises osc_snapphase.engine.TransientError: (malformed) not a server
    :raises osc_snapphase.cloud.NoTaskStates: the OS-EXT-STS fields are
        hidden from this user
    """
    server_id = body.get('id')
    status = body.get('status')
    vm_state = body.get('OS-EXT-STS:vm_state')
    power_state = body.get('OS-EXT-STS:power_state')
    if status is None and vm_state is None:
        # openstacksdk reads an HTML page or truncated JSON as an empty
        # body: not a cloud hiding task states, an invalid answer.
        raise engine.TransientError(
            'The Compute service sent an answer for server %s that is not '
            'a valid server (an HTML page or truncated JSON?)' % server_id,
            malformed=True)
    if vm_state is None and power_state is None:
        raise cloud.NoTaskStates(
            'The cloud does not show task states for server %s: the '
            'OS-EXT-STS fields are missing from its answer (an old cloud or '
            'a restrictive policy)' % server_id)
    fault = body.get('fault') or {}
    return records.ServerState(
        server_id, body.get('name'), status, vm_state,
        body.get(TASK_STATE), power_state,
        fault.get('message') if isinstance(fault, dict) else None)


def cloud_time(text):
    """Seconds since the epoch of an API time (``updated``), or None."""
    if not text or not isinstance(text, str):
        return None
    text = text.strip()
    if text.endswith('Z'):
        text = text[:-1] + '+00:00'
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def iso_time(seconds):
    """changes-since value: the time, floored to the second, UTC."""
    moment = datetime.datetime.fromtimestamp(int(seconds),
                                             datetime.timezone.utc)
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def _next_marker(body, page):
    """The marker of the next page if Nova linked one, else None."""
    for link in body.get('servers_links') or ():
        if isinstance(link, dict) and link.get('rel') == 'next':
            query = urllib.parse.urlparse(link.get('href') or '').query
            markers = urllib.parse.parse_qs(query).get('marker')
            if markers:
                return markers[-1]
            return page[-1].get('id') if page else None
    return None


def _malformed(message):
    return engine.TransientError(message, malformed=True)


def _page(body):
    """The servers of one page, checked; the newest ``updated`` in it.

    :raises osc_snapphase.engine.TransientError: (malformed) not a list of
        server objects with an ID, or an ``updated`` that is not an API
        time
    """
    page = body.get('servers') if isinstance(body, dict) else None
    if not isinstance(page, list) or not all(
            isinstance(server, dict) and isinstance(server.get('id'), str)
            for server in page):
        raise _malformed('The Compute service sent an answer that is not a '
                         'server list')
    newest = None
    for server in page:
        updated = server.get('updated')
        if updated is None:
            continue    # a partial record (a cell that does not answer)
        seen = cloud_time(updated)
        if seen is None:
            raise _malformed(
                'The Compute service sent server %s with an updated time '
                'that is not a time: %r' % (server.get('id'), updated))
        if newest is None or seen > newest:
            newest = seen
    return page, newest


def _names(states, known=None):
    """Up to engine.MAX_NAMED servers named: name (ID), and the rest counted.

    :param states: ServerStates, or server IDs (named from ``known``)
    """
    def describe(item):
        if isinstance(item, str):
            if item not in (known or {}):
                return '%s, no state known yet' % item
            item = known[item]
        label = ('%s (%s)' % (item.name, item.id)
                 if item.name and item.name != item.id else item.id)
        return '%s, task state %s' % (label, item.task_state or 'none')

    return '; '.join(records.first_named(states, describe, engine.MAX_NAMED))


class ServerListing:
    """``fetch(server_ids)`` for the engine, read from the Compute API.

    One named server is read with ``GET /servers/{id}`` at each poll.
    Several named servers, or a fleet (every server of the listing's
    scope), with the incremental listing (see the module's text); a named
    server that the listing does not show (another project's server given
    by ID to an administrator) is read by ID at each poll.

    The owner sets ``time_left`` (a callable: seconds or None, the bound of
    each request), ``notify`` (``notify(message)``: what a person should
    know, said once), ``elapsed`` (a callable: seconds since the watch
    began, for the messages) and, for a fleet, ``leave`` (``leave(state)``:
    a server no longer matching the filters leaves the watch; None: it is
    only forgotten here).

    :param compute: the openstacksdk compute proxy
    :param fleet: True: every server that the listing shows is answered
        (``server_ids`` is ignored); False: only the IDs asked for
    :param filters: query parameters of the listing, e.g.
        ``{'all_tenants': True, 'name': '^web'}``
    :param clock: the local monotonic clock
    """

    time_left = None
    notify = None
    elapsed = None
    leave = None

    def __init__(self, compute, fleet=False, filters=None,
                 clock=time.monotonic, overlap=OVERLAP,
                 resync_interval=RESYNC_INTERVAL, page_size=PAGE_SIZE):
        self._compute = compute
        self.fleet = fleet
        self._filters = dict(filters or {})
        self._clock = clock
        self._overlap = overlap
        self._resync_interval = resync_interval
        self._page_size = page_size
        self._known = {}          # server ID -> ServerState last answered
        self._outsiders = ()      # named servers read by ID
        self._down = set()        # IDs of servers whose cell is down
        # Lower bound of (cloud time - local clock), from the newest
        # `updated` read and when it was read; None: none read yet.
        self._offset = None
        # Seconds the listings ask further back than the overlap, learnt
        # from changes that they missed (a host clock off by more).
        self.skew = 0.0
        self._last_send = None    # local time the last listing was sent
        self._resync_at = None    # local time of the next full listing
        self.requests = 0
        self.full_listings = 0

    def __call__(self, server_ids):
        wanted = None
        if not self.fleet:
            wanted = set(server_ids)
            if len(wanted) == 1:
                return self._one(next(iter(wanted)))
        try:
            if (self._offset is None or self._resync_at is None
                    or self._clock() >= self._resync_at):
                return self._full(wanted)
            return self._changes(wanted)
        except engine.TransientError:
            # What the failed listing would have said is unknown: read
            # everything again next time.
            self._resync_at = None
            raise

    def since(self):
        """The changes-since value of the next incremental listing."""
        return iso_time(self._asked())

    def _asked(self):
        """The cloud time (seconds) the next incremental listing asks."""
        return (self._last_send + self._offset - self._overlap
                - self.skew)

    # -- requests ----------------------------------------------------------

    def _get(self, path, params=None):
        self.requests += 1
        return cloud.get_json(self._compute, path, params=params,
                              time_left=self.time_left)

    def _read_one(self, server_id):
        """The ServerState of a server read by ID.

        None when it is gone (404); DOWN when its cell does not answer.
        """
        try:
            body = self._get('/servers/%s' % server_id)
        except sdk_exceptions.ResourceNotFound:
            return None
        server = body.get('server') if isinstance(body, dict) else None
        if not isinstance(server, dict):
            raise _malformed('The Compute service sent an answer for server '
                             '%s that is not a server' % server_id)
        if in_down_cell(server):
            self._cells_down([server_id])
            return DOWN
        self._down.discard(server_id)
        return server_state(server)

    def _one(self, server_id):
        """A watch of one server: ``{id: ServerState}``, ``{}`` if gone."""
        state = self._read_one(server_id)
        if state is DOWN:
            return engine.Answer()       # its last state holds
        if state is None:
            return {}
        self._known[server_id] = state
        return {server_id: state}

    def _list(self, params):
        """Every server of the listing, page by page; the newest update."""
        params = dict(params, limit=self._page_size)
        servers = []
        newest = None
        markers = set()
        while True:
            try:
                body = self._get(SERVERS_PATH, params)
            except sdk_exceptions.BadRequestException:
                if 'marker' not in params:
                    raise
                # The marker's server went (deleted and archived) while
                # the pages were read: read them again.
                raise engine.TransientError(
                    'The server list changed while it was read page by '
                    'page; reading it again')
            page, seen = _page(body)
            servers.extend(page)
            if seen is not None and (newest is None or seen > newest):
                newest = seen
            marker = _next_marker(body, page)
            if marker is None or not page:
                return servers, newest
            if marker in markers:
                raise _malformed(
                    'The Compute service linked a page of the server list '
                    'that was already read (marker %s): the list would '
                    'never end' % marker)
            markers.add(marker)
            params = dict(params, marker=marker)

    # -- listings ----------------------------------------------------------

    def _full(self, wanted):
        send = self._clock()
        bodies, newest = self._list(self._filters)
        seen = set(body.get('id') for body in bodies)
        outsiders = (tuple(sorted(wanted - seen)) if wanted is not None
                     else ())
        answer = self._answer(bodies, wanted, outsiders)
        missed = self._missed(bodies, answer)
        missing = [s for s in self._known if s not in seen]
        left = kept = ()
        if self.fleet:
            left, kept = self._absent(missing, answer)
        else:
            # Not listed any more, a named server is read by ID.
            answer.deleted.extend(s for s in missing if s not in outsiders)
        # Every request of the poll has succeeded: what it saw is known.
        self.full_listings += 1
        self._outsiders = outsiders
        for server_id in missing:
            if server_id not in kept:
                del self._known[server_id]
        self._apply(answer)
        self._sent(send, newest, full=True)
        self._resync_at = self._clock() + self._resync_interval
        if missed:
            self._widen(missed)
        if left:
            self._left(left)
        return answer

    def _changes(self, wanted):
        send = self._clock()
        bodies, newest = self._list(dict(self._filters,
                                         **{'changes-since': self.since()}))
        answer = self._answer(bodies, wanted, self._outsiders)
        self._apply(answer)
        self._sent(send, newest)
        return answer

    def _answer(self, bodies, wanted, outsiders):
        """The changed servers of a listing, and the outsiders read.

        Changes nothing of what is known: a request or a body that fails
        leaves it as it was, for the next (full) listing to compare with.
        """
        answer = engine.Answer({}, [])
        down = []
        for body in bodies:
            server_id = body.get('id')
            if wanted is not None and server_id not in wanted:
                continue
            if in_down_cell(body):
                down.append(server_id)   # its last known state holds
                continue
            state = server_state(body)
            if engine.is_gone(state):
                # Nova lists deleted servers in changes-since answers;
                # one never seen is no news.
                if server_id in self._known:
                    answer.states[server_id] = state
            elif self._known.get(server_id) != state:
                answer.states[server_id] = state
        for server_id in outsiders:
            state = self._read_one(server_id)
            if state is None:
                answer.deleted.append(server_id)
            elif state is not DOWN:
                answer.states[server_id] = state
        if down:
            self._cells_down(down)
        return answer

    def _absent(self, missing, answer):
        """Fleet: known servers that a full listing no longer shows.

        Each is read once by ID: gone (404, or a DELETED record) is a
        deletion in ``answer``; in a cell that does not answer, or not
        read, it is kept (read again at the next full listing); otherwise
        it no longer matches the filters (renamed) and leaves the watch.
        Returns ``(states of those leaving, IDs kept)``.
        """
        left, kept = [], []
        for server_id in missing:
            try:
                state = self._read_one(server_id)
            except engine.TransientError as exc:
                # Before microversion 2.69 Nova leaves the servers of a
                # cell that does not answer out of its lists and fails to
                # show them (HTTP 500): not a reason to stop the listings.
                self._unread(server_id, exc)
                state = DOWN
            if state is None:
                answer.deleted.append(server_id)
            elif state is DOWN:
                kept.append(server_id)
            elif engine.is_gone(state):
                answer.states[server_id] = state
            else:
                left.append(state)
        return left, kept

    def _missed(self, bodies, answer):
        """Changes of known servers that incremental listings missed.

        A change stamped before the time the next incremental listing
        would ask for was never shown by one: ``[(seconds before that
        time, state, updated)]``.
        """
        if self._offset is None or self._last_send is None:
            return []
        asked = int(self._asked())   # changes-since is to the second
        missed = []
        for body in bodies:
            server_id = body.get('id')
            state = answer.states.get(server_id)
            if (state is None or server_id not in self._known
                    or server_id in self._down):
                continue
            updated = cloud_time(body.get('updated'))
            if updated is not None and updated < asked:
                missed.append((asked - updated, state, body['updated']))
        return missed

    def _apply(self, answer):
        """Note the states of an answer as the last ones known."""
        for server_id, state in answer.states.items():
            self._down.discard(server_id)
            if server_id in self._outsiders:
                continue
            if engine.is_gone(state):
                self._known.pop(server_id, None)
            else:
                self._known[server_id] = state

    def _sent(self, send, newest, full=False):
        """Note a listing answered: its send time, the cloud's clock.

        A full listing sets the time base afresh from what it shows; an
        incremental one only raises it.
        """
        if newest is not None:
            # The answer came after the update it shows: the cloud's
            # clock read at least `newest` when it arrived (now, or before).
            offset = newest - self._clock()
            if full or self._offset is None or offset > self._offset:
                self._offset = offset
        self._last_send = send

    # -- what a person should know -----------------------------------------

    def _say(self, message):
        if self.notify is not None:
            self.notify(message)

    def _after(self):
        if self.elapsed is None:
            return ''
        return ' after %s' % records.format_duration(self.elapsed())

    def _widen(self, missed):
        """Ask further back: by the smallest gap of the missed changes.

        The smallest gap is the nearest to the skew of the host clock
        (a change stamped long ago was missed by more); the overlap again
        on top of it. At most a resync interval: the full listings find
        what is older.
        """
        gap, state, updated = min(missed, key=lambda item: item[0])
        first = self.skew == 0.0
        self.skew = min(self._resync_interval,
                        max(self.skew, gap + self._overlap))
        if first:
            self._say(
                'The full listing%s found %d server change(s) that the '
                'changes-since listings missed (%s, updated %s, %ds '
                'before the time asked): a cloud host\'s clock is off by '
                'more than %ds. The listings now ask %ds further back; '
                'check the clocks of the Compute hosts (NTP, for example '
                '"chronyc tracking" on each)' % (
                    self._after(), len(missed), _names([state]), updated,
                    gap, self._overlap, self.skew))

    def _left(self, states):
        """Fleet: servers no longer matching the filters leave the watch."""
        self._say(
            'No longer matching the filters of the watch%s (renamed?), '
            'not deleted, these servers leave it: %s. Watch one by ID '
            'with "openstack server task-state watch %s"' % (
                self._after(), _names(states), states[0].id))
        for state in states:
            if self.leave is not None:
                self.leave(state)

    def _unread(self, server_id, exc):
        """Say once that a server missing from the list could not be read."""
        if server_id in self._down:
            return
        self._down.add(server_id)
        self._say(
            'Server %s is missing from the server list%s and reading it by '
            'ID failed (%s): its last known state is kept and it is read '
            'again at the next full listing. Its cell may not answer: an '
            'administrator can check the cells with "nova-manage cell_v2 '
            'list_cells"' % (_names([server_id], self._known), self._after(),
                             exc))

    def _cells_down(self, server_ids):
        """Say once which servers are in a cell that does not answer."""
        new = [s for s in server_ids if s not in self._down]
        if not new:
            return
        self._down.update(new)
        self._say(
            'The cell of these servers does not answer%s (status UNKNOWN, '
            'no task state shown): %s. Their last known state is kept '
            'until the cell answers again; an administrator can check the '
            'cells with "nova-manage cell_v2 list_cells"' % (
                self._after(), _names(new, self._known)))
