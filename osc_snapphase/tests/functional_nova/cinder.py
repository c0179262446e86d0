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

"""Nova's Cinder test double, with snapshot states a test controls, and a
Cinder v3 HTTP view of it.

:class:`PhaseCinderFixture` replaces ``nova.tests.fixtures.CinderFixture``
(an in-process mock of ``nova.volume.cinder.API``) in the Nova harness.  The
base fixture turns a snapshot ``available`` the first time anybody reads it;
here a snapshot's status lives in one place, the fixture's
``volume_snapshots``, which both Nova (``get_snapshot`` through the mock, as
the compute service polls it before it thaws the guest) and
:class:`CinderAPI` (the HTTP view the ``openstack`` CLI and openstacksdk's
block-storage proxy read) go through :meth:`PhaseCinderFixture.read_snapshot`.

What happens to a new snapshot is decided by a :class:`SnapshotPlan`
registered with :meth:`PhaseCinderFixture.set_plan` (per volume, or for all):
it stays ``creating`` until the test calls :meth:`SnapshotPlan.release`,
which moves it to ``available``, ``error``, or deletes it (Nova then gets
``SnapshotNotFound``, the HTTP view a 404).  Without a plan a snapshot is
``creating`` when created and ``available`` from its first read on, as in
the base fixture.
"""

import copy
import datetime
import threading
import time
import urllib.parse

from nova import exception as nova_exception
from nova.tests import fixtures as nova_fixtures

from osc_snapphase.tests.functional_nova import http

# Every HTTP view of the test doubles answers JSON the same way.
_response = http.json_response

#: Outcomes a released snapshot can have.
OUTCOMES = ('available', 'error', 'deleted')
#: Microversions the view claims (Cinder 2026: 3.0 to 3.71).
MIN_VERSION = '3.0'
MAX_VERSION = '3.71'
#: User agents of the test's own reads (not counted as product reads).
TEST_AGENTS = ('python-requests',)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%S.%f')


class SnapshotPlan(object):
    """What happens to the next Cinder snapshots of a volume (or of all).

    :param hold: keep each snapshot ``creating`` until :meth:`release`.
    :param outcome: ``available``, ``error`` or ``deleted``: the state a
        snapshot takes when released (or, unheld, at its first read).

    ``snapshot_ids`` lists the snapshots made under the plan;
    ``released_at`` / ``released_wall`` are the ``time.monotonic()`` /
    ``time.time()`` of the moment the held snapshots changed state.
    """

    def __init__(self, hold=True, outcome='available'):
        if outcome not in OUTCOMES:
            raise ValueError('unknown outcome %r' % outcome)
        self.hold = hold
        self.outcome = outcome
        self.fixture = None
        self.snapshot_ids = []
        self.created = threading.Event()
        self.released_at = None
        self.released_wall = None

    def wait_created(self, count=1, timeout=240.0):
        """The ids of the first ``count`` snapshots made under the plan."""
        deadline = time.monotonic() + timeout
        while len(self.snapshot_ids) < count:
            if time.monotonic() > deadline:
                raise AssertionError('%d snapshot(s) created, not %d'
                                     % (len(self.snapshot_ids), count))
            self.created.wait(0.05)
        return list(self.snapshot_ids[:count])

    def release(self, outcome=None):
        """Let the held snapshots (and later ones) take their outcome."""
        if outcome is not None:
            if outcome not in OUTCOMES:
                raise ValueError('unknown outcome %r' % outcome)
            self.outcome = outcome
        if self.fixture is None:
            self.hold = False
            return
        with self.fixture.lock:
            self.hold = False
            for snapshot_id in self.snapshot_ids:
                self.fixture.settle(snapshot_id, self.outcome)
            self.released_at = time.monotonic()
            self.released_wall = time.time()


class PhaseCinderFixture(nova_fixtures.CinderFixture):
    """Nova's Cinder fixture; snapshot states are held and settled here."""

    #: Volumes the fixture knows without a create (besides attached ones).
    KNOWN_VOLUMES = (nova_fixtures.CinderFixture.IMAGE_BACKED_VOL,)

    def __init__(self, test, az='nova'):
        super().__init__(test, az=az)
        self.lock = threading.RLock()
        self.plans = {}
        self.snapshot_plans = {}
        self.deleted_snapshots = {}
        #: (time.monotonic(), snapshot id, status) of every settle.
        self.history = []
        #: (time.monotonic(), snapshot id) of every read by Nova itself
        #: (the compute service polls before it thaws the guest).
        self.nova_reads = []

    # -- test control --

    def set_plan(self, plan, volume_id=None):
        """Use ``plan`` for new snapshots of ``volume_id`` (None: all)."""
        with self.lock:
            plan.fixture = self
            self.plans[volume_id] = plan
        return plan

    def release_all(self):
        """Settle every held snapshot ``available`` (test teardown)."""
        with self.lock:
            self.plans.clear()
            for plan in set(self.snapshot_plans.values()):
                plan.hold = False
            for snapshot_id in list(self.volume_snapshots):
                self.settle(snapshot_id, 'available')

    def add_volume(self, volume_id, name=None, size=1):
        """A data volume Nova can attach (known to the HTTP view too)."""
        with self.lock:
            self.volumes[volume_id] = {
                'id': volume_id, 'display_name': name or volume_id,
                'display_description': '', 'size': size,
                'status': 'available', 'attach_status': 'detached',
                'multiattach': False, 'availability_zone': self.az}
        return volume_id

    def settle(self, snapshot_id, outcome):
        """Move a ``creating`` snapshot to ``outcome`` (lock held)."""
        snapshot = self.volume_snapshots.get(snapshot_id)
        if snapshot is None or snapshot['status'] != 'creating':
            return
        if outcome == 'deleted':
            snapshot = self.volume_snapshots.pop(snapshot_id)
            snapshot['status'] = 'deleted'
            self.deleted_snapshots[snapshot_id] = snapshot
        else:
            snapshot['status'] = outcome
            if outcome == 'available':
                snapshot['progress'] = '100%'
        snapshot['updated_at'] = _now()
        self.history.append((time.monotonic(), snapshot_id, outcome))

    def read_snapshot(self, snapshot_id):
        """A copy of the snapshot as Cinder would show it now, or None."""
        with self.lock:
            snapshot = self.volume_snapshots.get(snapshot_id)
            if snapshot is None:
                return None
            if snapshot['status'] == 'creating':
                plan = self.snapshot_plans.get(snapshot_id)
                if plan is None:
                    self.settle(snapshot_id, 'available')
                elif not plan.hold:
                    self.settle(snapshot_id, plan.outcome)
            snapshot = self.volume_snapshots.get(snapshot_id)
            return copy.deepcopy(snapshot) if snapshot else None

    def list_snapshots(self):
        with self.lock:
            ids = list(self.volume_snapshots)
        return [s for s in map(self.read_snapshot, ids) if s is not None]

    def snapshot_status(self, snapshot_id):
        """The status without side effects (``deleted`` when gone)."""
        with self.lock:
            if snapshot_id in self.deleted_snapshots:
                return 'deleted'
            snapshot = self.volume_snapshots.get(snapshot_id)
            return snapshot and snapshot['status']

    def known_volume_ids(self):
        with self.lock:
            ids = set(self.KNOWN_VOLUMES) | set(self.volumes)
            ids |= {v for v, a in self.volume_to_attachment.items() if a}
            ids |= {s['volume_id'] for s in self.volume_snapshots.values()}
        return sorted(ids)

    # -- the mocked nova.volume.cinder.API --

    def fake_get(self, context, volume_id, microversion=None):
        with self.lock:
            volume = super().fake_get(context, volume_id,
                                      microversion=microversion)
        # snapshot_volume_backed() reads it; the base fixture's made-up
        # volumes lack it.
        volume.setdefault('display_description', '')
        volume.setdefault('display_name', volume_id)
        return volume

    def fake_create_snapshot_force(self, _ctxt, volume_id, name,
                                   description):
        with self.lock:
            snapshot = super().fake_create_snapshot_force(
                _ctxt, volume_id, name, description)
            stamp = _now()
            volume = self.volumes.get(volume_id) or {}
            snapshot.update({
                'project_id': getattr(_ctxt, 'project_id', None),
                'user_id': getattr(_ctxt, 'user_id', None),
                'created_at': stamp, 'updated_at': stamp,
                'size': volume.get('size', 1), 'progress': '0%'})
            plan = self.plans.get(volume_id) or self.plans.get(None)
            if plan is not None:
                self.snapshot_plans[snapshot['id']] = plan
                plan.snapshot_ids.append(snapshot['id'])
                plan.created.set()
            return copy.deepcopy(snapshot)

    def nova_reads_of(self, snapshot_id, since=0.0):
        with self.lock:
            return [t for t, sid in self.nova_reads
                    if sid == snapshot_id and t >= since]

    def fake_get_snapshot(self, _ctxt, snap_id):
        with self.lock:
            self.nova_reads.append((time.monotonic(), snap_id))
        snapshot = self.read_snapshot(snap_id)
        if snapshot is None:
            raise nova_exception.SnapshotNotFound(snapshot_id=snap_id)
        return snapshot


# -------------------------------------------------------------- HTTP ----

class CinderAPI(object):
    """A read-only Cinder v3 HTTP API over :class:`PhaseCinderFixture`.

    Serves version discovery (``/``, ``/v3``, ``/v3/{project}``) and
    ``GET`` of ``snapshots``, ``snapshots/detail``, ``snapshots/{id}``,
    ``volumes``, ``volumes/detail`` and ``volumes/{id}``, under
    ``/v3/{project_id}/`` (and project-less, as Cinder does from 3.67).
    A non-admin sees only its project's snapshots.  Every product read of a
    snapshot (a GET that returned it, or a 404 for it) is recorded in
    :attr:`reads` with its ``time.monotonic()``.
    """

    def __init__(self, fixture, keystone):
        self.fixture = fixture
        self.keystone = keystone
        self.url = None
        self.lock = threading.Lock()
        #: (monotonic time, snapshot id, status shown or 404, user agent)
        self.reads = []

    # -- what tests ask --

    def snapshot_reads(self, snapshot_id, since=0.0):
        """Times of the product's reads of ``snapshot_id`` since ``since``."""
        with self.lock:
            return [t for t, sid, _, agent in self.reads
                    if sid == snapshot_id and t >= since and
                    not agent.startswith(TEST_AGENTS)]

    def last_read(self, snapshot_id):
        """(time, status) of the product's last read of the snapshot."""
        with self.lock:
            found = [(t, status) for t, sid, status, agent in self.reads
                     if sid == snapshot_id and
                     not agent.startswith(TEST_AGENTS)]
        return found[-1] if found else (None, None)

    # -- WSGI --

    def _version(self):
        return {'id': 'v3.0', 'status': 'CURRENT', 'version': MAX_VERSION,
                'min_version': MIN_VERSION,
                'updated': '2023-08-31T00:00:00Z',
                'links': [{'rel': 'self', 'href': self.url + '/v3/'}],
                'media-types': [{
                    'base': 'application/json',
                    'type': 'application/vnd.openstack.volume+json;'
                            'version=3'}]}

    def __call__(self, environ, start_response):
        path = environ.get('PATH_INFO', '/').rstrip('/')
        method = environ['REQUEST_METHOD']
        parts = path.split('/')[1:]
        if method == 'GET' and path == '':
            return _response(start_response, 300,
                             {'versions': [self._version()]})
        if method == 'GET' and (path == '/v3' or (
                len(parts) == 2 and parts[0] == 'v3' and
                parts[1] in self.keystone.projects.values())):
            return _response(start_response, 200,
                             {'versions': [self._version()]})
        identity = self.keystone.validate(environ.get('HTTP_X_AUTH_TOKEN'))
        if identity is None:
            return _response(start_response, 401, {'error': {
                'code': 401, 'message': 'Unauthorized'}})
        if not parts or parts[0] != 'v3':
            return self._not_found(start_response, method, path)
        rest = parts[1:]
        if rest and rest[0] in self.keystone.projects.values():
            if rest[0] != identity['project_id']:
                return self._not_found(start_response, method, path)
            rest = rest[1:]
        if method != 'GET':
            return _response(start_response, 405, {'error': {
                'code': 405, 'message': 'Read-only Cinder view'}})
        query = urllib.parse.parse_qs(environ.get('QUERY_STRING', ''))
        query = {k: v[-1] for k, v in query.items()}
        agent = environ.get('HTTP_USER_AGENT', '')
        headers = [('OpenStack-API-Version', 'volume %s' % self._asked(
            environ)), ('Vary', 'OpenStack-API-Version')]
        if rest[:1] == ['snapshots']:
            return self._snapshots(rest[1:], query, identity, agent,
                                   start_response, headers)
        if rest[:1] == ['volumes']:
            return self._volumes(rest[1:], query, start_response, headers)
        return self._not_found(start_response, method, path)

    @staticmethod
    def _asked(environ):
        asked = environ.get('HTTP_OPENSTACK_API_VERSION', '')
        if asked.startswith('volume '):
            return asked.split(' ', 1)[1].strip()
        return MIN_VERSION

    @staticmethod
    def _not_found(start_response, method, path):
        return _response(start_response, 404, {'itemNotFound': {
            'code': 404, 'message': 'Not found: %s %s' % (method, path)}})

    def _record(self, snapshot_id, status, agent):
        with self.lock:
            self.reads.append((time.monotonic(), snapshot_id, status, agent))

    @staticmethod
    def _admin(identity):
        return 'admin' in identity['roles']

    def _snapshots(self, rest, query, identity, agent, start_response,
                   headers):
        if len(rest) == 1 and rest[0] != 'detail':
            snapshot = self.fixture.read_snapshot(rest[0])
            if snapshot is not None and not self._admin(identity) and (
                    snapshot.get('project_id') != identity['project_id']):
                snapshot = None
            self._record(rest[0], snapshot and snapshot['status'] or 404,
                         agent)
            if snapshot is None:
                return _response(start_response, 404, {'itemNotFound': {
                    'code': 404, 'message': 'Snapshot %s could not be '
                                            'found.' % rest[0]}}, headers)
            return _response(start_response, 200,
                             {'snapshot': self.snapshot_view(snapshot)},
                             headers)
        if len(rest) > 1:
            return self._not_found(start_response, 'GET', '/'.join(rest))
        snapshots = self.fixture.list_snapshots()
        all_projects = (self._admin(identity) and
                        query.pop('all_tenants', '') in ('1', 'true', 'True'))
        if not all_projects:
            snapshots = [s for s in snapshots
                         if s.get('project_id') == identity['project_id']]
        for key in ('volume_id', 'status', 'name', 'project_id'):
            if key in query:
                field = 'display_name' if key == 'name' else key
                snapshots = [s for s in snapshots
                             if str(s.get(field)) == query[key]]
        for snapshot in snapshots:
            self._record(snapshot['id'], snapshot['status'], agent)
        return _response(start_response, 200, {'snapshots': [
            self.snapshot_view(s) for s in snapshots]}, headers)

    def _volumes(self, rest, query, start_response, headers):
        if len(rest) == 1 and rest[0] != 'detail':
            if rest[0] not in self.fixture.known_volume_ids():
                return _response(start_response, 404, {'itemNotFound': {
                    'code': 404, 'message': 'Volume %s could not be '
                                            'found.' % rest[0]}}, headers)
            return _response(start_response, 200,
                             {'volume': self.volume_view(rest[0])}, headers)
        if len(rest) > 1:
            return self._not_found(start_response, 'GET', '/'.join(rest))
        volumes = [self.volume_view(v)
                   for v in self.fixture.known_volume_ids()]
        for key in ('name', 'status'):
            if key in query:
                volumes = [v for v in volumes if v[key] == query[key]]
        return _response(start_response, 200, {'volumes': volumes}, headers)

    def snapshot_view(self, snapshot):
        return {
            'id': snapshot['id'],
            'name': snapshot.get('display_name'),
            'description': snapshot.get('display_description'),
            'status': snapshot['status'],
            'size': snapshot.get('size', 1),
            'volume_id': snapshot['volume_id'],
            'created_at': snapshot.get('created_at'),
            'updated_at': snapshot.get('updated_at'),
            'metadata': {},
            'user_id': snapshot.get('user_id'),
            'group_snapshot_id': None,
            'consumes_quota': True,
            'os-extended-snapshot-attributes:progress':
                snapshot.get('progress', '0%'),
            'os-extended-snapshot-attributes:project_id':
                snapshot.get('project_id'),
        }

    def volume_view(self, volume_id):
        volume = self.fixture.fake_get(None, volume_id)
        with self.fixture.lock:
            found = list(self.fixture.volume_to_attachment.get(
                volume_id, {}).values())
        attachments = [{
            'id': volume_id, 'volume_id': volume_id,
            'server_id': attachment['instance_uuid'],
            'attachment_id': attachment['id'],
            'device': (attachment.get('connector') or {}).get('device'),
            'host_name': None, 'attached_at': None}
            for attachment in found]
        return {
            'id': volume_id,
            'name': volume.get('display_name'),
            'description': volume.get('display_description'),
            'status': volume.get('status', 'available'),
            'size': volume.get('size', 1),
            'availability_zone': volume.get('availability_zone'),
            'bootable': 'true' if volume.get('bootable') else 'false',
            'multiattach': bool(volume.get('multiattach')),
            'attachments': attachments,
            'volume_image_metadata': volume.get('volume_image_metadata'),
            'volume_type': 'lvm-1', 'encrypted': False, 'metadata': {},
            'snapshot_id': None, 'source_volid': None,
            'replication_status': None, 'consistencygroup_id': None,
            'created_at': '2026-01-01T00:00:00.000000', 'updated_at': None,
            'user_id': None, 'os-vol-tenant-attr:tenant_id': None,
            'links': [],
        }
