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
RESYNC_INTERVAL and after a transient fault: it also finds the servers
gone without a DELETED record (archived, or no longer matching the
filters). While nothing changes, a poll is one request whose answer lists
no server.
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
        body.get('OS-EXT-STS:task_state'), power_state,
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


class ServerListing:
    """``fetch(server_ids)`` for the engine, read from the Compute API.

    One named server is read with ``GET /servers/{id}`` at each poll.
    Several named servers, or a fleet (every server of the listing's
    scope), with the incremental listing (see the module's text); a named
    server that the listing does not show (another project's server given
    by ID to an administrator) is read by ID at each poll.

    :param compute: the openstacksdk compute proxy
    :param fleet: True: every server that the listing shows is answered
        (``server_ids`` is ignored); False: only the IDs asked for
    :param filters: query parameters of the listing, e.g.
        ``{'all_tenants': True, 'name': '^web'}``
    :param clock: the local monotonic clock
    """

    time_left = None    # set by the owner: a callable, seconds or None

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
        # Lower bound of (cloud time - local clock), from the newest
        # `updated` read and when it was read; None: none read yet.
        self._offset = None
        self._last_send = None    # local time the last listing was sent
        self._resync_at = None    # local time of the next full listing
        self.requests = 0
        self.full_listings = 0

    def __call__(self, server_ids):
        wanted = None
        if not self.fleet:
            wanted = set(server_ids)
            if len(wanted) == 1:
                return self._read_one(next(iter(wanted)))
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
        return iso_time(self._last_send + self._offset - self._overlap)

    # -- requests ----------------------------------------------------------

    def _get(self, path, params=None):
        self.requests += 1
        return cloud.get_json(self._compute, path, params=params,
                              time_left=self.time_left)

    def _read_one(self, server_id):
        """``{id: ServerState}``, or ``{}`` when the server is gone."""
        try:
            body = self._get('/servers/%s' % server_id)
        except sdk_exceptions.ResourceNotFound:
            return {}
        server = body.get('server') if isinstance(body, dict) else None
        if not isinstance(server, dict):
            raise engine.TransientError(
                'The Compute service sent an answer for server %s that is '
                'not a server' % server_id, malformed=True)
        return {server_id: server_state(server)}

    def _list(self, params):
        """Every server of the listing, page by page."""
        params = dict(params, limit=self._page_size)
        servers = []
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
            page = body.get('servers') if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise engine.TransientError(
                    'The Compute service sent an answer that is not a '
                    'server list', malformed=True)
            servers.extend(page)
            marker = _next_marker(body, page)
            if marker is None or not page:
                return servers
            params = dict(params, marker=marker)

    # -- listings ----------------------------------------------------------

    def _full(self, wanted):
        send = self._clock()
        bodies = self._list(self._filters)
        seen = set(body.get('id') for body in bodies)
        outsiders = (tuple(sorted(wanted - seen)) if wanted is not None
                     else ())
        answer = self._answer(bodies, wanted, outsiders)
        # Every request of the poll has succeeded: what it saw is known.
        self.full_listings += 1
        self._outsiders = outsiders
        for server_id in [s for s in self._known if s not in seen]:
            del self._known[server_id]
            answer.deleted.append(server_id)
        self._apply(answer)
        self._sent(send, bodies)
        self._resync_at = self._clock() + self._resync_interval
        return answer

    def _changes(self, wanted):
        send = self._clock()
        bodies = self._list(dict(self._filters,
                                 **{'changes-since': self.since()}))
        answer = self._answer(bodies, wanted, self._outsiders)
        self._apply(answer)
        self._sent(send, bodies)
        return answer

    def _answer(self, bodies, wanted, outsiders):
        """The changed servers of a listing, and the outsiders read.

        Changes nothing of what is known: a request or a body that fails
        leaves it as it was, for the next (full) listing to compare with.
        """
        answer = engine.Answer({}, [])
        for body in bodies:
            server_id = body.get('id')
            if wanted is not None and server_id not in wanted:
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
            states = self._read_one(server_id)
            if states:
                answer.states.update(states)
            else:
                answer.deleted.append(server_id)
        return answer

    def _apply(self, answer):
        """Note the states of an answer as the last ones known."""
        for server_id, state in answer.states.items():
            if server_id in self._outsiders:
                continue
            if engine.is_gone(state):
                self._known.pop(server_id, None)
            else:
                self._known[server_id] = state

    def _sent(self, send, bodies):
        """Note a listing answered: its send time, the cloud's clock."""
        newest = max((b.get('updated') or '' for b in bodies), default='')
        seen = cloud_time(newest)
        if seen is not None:
            # The answer came after the update it shows: the cloud's
            # clock read at least `seen` when it arrived (now, or before).
            offset = seen - self._clock()
            if self._offset is None or offset > self._offset:
                self._offset = offset
        self._last_send = send
