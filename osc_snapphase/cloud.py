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

"""openstacksdk adapters for the polling engine, and its Python API.

The engine sees plain functions; this module turns the compute and image
proxies that OpenStackClient (or an ``openstack.connection.Connection``)
already authenticates into them, and sorts SDK errors into the transient
ones that a watch survives and the others that end it.
"""

import json
import logging
import time
import types
import urllib.parse

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions
from requests import exceptions as requests_exceptions

from osc_snapphase import conditions
from osc_snapphase import engine
from osc_snapphase import listing
from osc_snapphase import phases
from osc_snapphase import records

LOG = logging.getLogger(__name__)

TRANSIENT_STATUS_CODES = (429, 500, 502, 503, 504)


class NoTaskStates(Exception):
    """The cloud does not show the OS-EXT-STS fields to this user."""


def _retry_after(response):
    if response is None:
        return None
    value = response.headers.get('Retry-After')
    try:
        return min(float(value), 3600.0) if value else None
    except ValueError:
        return None


def transient_from(exc, service=None):
    """Return a TransientError for an SDK/keystoneauth error, or None.

    :param service: the service type of the proxy that made the request
        (compute, image, block-storage); None: guessed from the URL
    """
    if isinstance(exc, sdk_exceptions.HttpException):
        code = exc.status_code
        if code in TRANSIENT_STATUS_CODES:
            return engine.TransientError(
                '%s answered HTTP %s' % (_service_of(exc, service), code),
                retry_after=_retry_after(exc.response))
        return None
    if isinstance(exc, (ks_exceptions.ConnectFailure,
                        ks_exceptions.ConnectTimeout,
                        ks_exceptions.UnknownConnectionError)):
        return engine.TransientError('Connection problem: %s' % exc)
    if isinstance(exc, (json.JSONDecodeError,
                        requests_exceptions.JSONDecodeError)):
        # An HTML error page, a truncated body; any other ValueError is a
        # bug, not an answer to retry.
        return engine.TransientError(
            '%s sent an answer that is not valid JSON (an HTML page or a '
            'truncated body?): %s' % (_service_of(exc, service), exc),
            malformed=True)
    return None


SERVICE_NAMES = {
    'compute': 'The Compute service',
    'image': 'The Image service',
    'block-storage': 'The Block Storage service',
    'volume': 'The Block Storage service',
}


def _service_of(exc, service=None):
    if service is None:
        response = getattr(exc, 'response', None)
        url = getattr(response, 'url', None) or ''
        if '/image' in url or ':9292' in url:
            service = 'image'
        elif '/volume' in url or ':8776' in url:
            service = 'block-storage'
    return SERVICE_NAMES.get(service, SERVICE_NAMES['compute'])


def _call(function, *args, service=None):
    try:
        return function(*args)
    except sdk_exceptions.ResourceNotFound:
        raise
    except Exception as exc:
        transient = transient_from(exc, service)
        if transient is None:
            raise
        raise transient from exc


# Shortest read timeout given to a request near the end of --timeout.
MIN_REQUEST_TIMEOUT = 0.5
# Longest wait for one answer when the cloud configures none: a request
# that hangs is then a transient fault, retried, instead of a silent hang.
MAX_REQUEST_TIMEOUT = 60.0


def request_timeout(session, time_left=None):
    """The read timeout of one request: the time left, within bounds.

    Without it a request that hangs (or answers after minutes) would hold
    a watch past its --timeout, or forever without one: the engine only
    looks at the clock between polls. A request cut short is a
    ConnectTimeout, a transient fault: the engine retries it, or ends with
    its timeout. A smaller timeout configured on the session is kept.

    :param session: the keystoneauth1 Session of the proxy, or None
    :param time_left: a callable returning seconds or None, seconds, or
        None (no limit but MAX_REQUEST_TIMEOUT)
    """
    left = time_left() if callable(time_left) else time_left
    limit = MAX_REQUEST_TIMEOUT
    if left is not None:
        limit = max(MIN_REQUEST_TIMEOUT, min(left, limit))
    configured = getattr(session, 'timeout', None)
    if configured is not None and configured < limit:
        return configured
    return limit


def _read_json(proxy, path, params, timeout):
    # status_code_retries=0: keystoneauth would retry a 503 itself (five
    # times for the Image service by default, asleep up to 15 s, past the
    # time left); the engine retries, with backoff, within the time left.
    response = proxy.get(path, params=params, timeout=timeout,
                         status_code_retries=0)
    sdk_exceptions.raise_from_response(response)
    return response.json()


def get_json(proxy, path, params=None, time_left=None):
    """GET ``path`` through an openstacksdk proxy; the decoded JSON body.

    The request goes through the proxy's session, endpoint and auth; its
    read timeout (see :func:`request_timeout`) is given to this request
    alone, as keystoneauth's ``timeout`` keyword: the session, which every
    proxy of the caller's Connection and every thread using it share, is
    never changed. A 5xx is not retried by keystoneauth: the engine does
    that, within the time left.

    :raises openstack.exceptions.ResourceNotFound: HTTP 404
    :raises osc_snapphase.engine.TransientError: a fault worth retrying
        (connection problem, 429, 5xx, a body that is not JSON)
    """
    timeout = request_timeout(getattr(proxy, 'session', None), time_left)
    return _call(_read_json, proxy, path, params, timeout,
                 service=getattr(proxy, 'service_type', None))


def server_state(server):
    """ServerState from an openstacksdk Server (``show``).

    The same mapping as the engine's reads of raw JSON
    (:func:`osc_snapphase.listing.server_state`), on the server's body.
    """
    return listing.server_state(server.to_dict(
        body=True, headers=False, computed=False, original_names=True))


def snapshot_ids(properties):
    """Cinder snapshot IDs in an image's ``block_device_mapping``, or None.

    Nova stores the mapping as a JSON string in Glance (a list when an SDK
    resource already decoded it); None when the image has none, i.e. it is
    not the image of a volume-backed server.
    """
    mapping = (properties or {}).get('block_device_mapping')
    if mapping is None:
        return None
    if isinstance(mapping, str):
        try:
            mapping = json.loads(mapping)
        except ValueError:
            return ()
    if not isinstance(mapping, list):
        return ()
    return tuple(bdm['snapshot_id'] for bdm in mapping
                 if isinstance(bdm, dict) and bdm.get('snapshot_id'))


def _json_object(body, key=None, what='answer'):
    """The JSON object of an answer (or its ``key``); malformed if not one.

    A proxy or a broken service can answer 200 with valid JSON that is not
    the API's object (``null``, a list, a string): not an answer either.
    """
    if key is not None and isinstance(body, dict):
        body = body.get(key)
    if not isinstance(body, dict):
        raise engine.TransientError(
            'The cloud sent a %s that is not a JSON object' % what,
            malformed=True)
    return body


def image_state(body):
    """ImageState from a Glance v2 image (its JSON object)."""
    return records.ImageState(
        body.get('id'), body.get('name'), body.get('status'),
        snapshot_ids(body), body.get('instance_uuid'))


def snapshot_state(body):
    """SnapshotState from a Cinder v3 snapshot (its JSON object)."""
    return records.SnapshotState(body.get('id'), body.get('volume_id'),
                                 body.get('status'), body.get('created_at'))


def _path(template, resource_id):
    return template % urllib.parse.quote(str(resource_id), safe='')


class ImageLookup:
    """``get`` and ``latest`` image lookups for the engine (Glance v2).

    Each reads the Image API's JSON through the proxy (:func:`get_json`),
    its read timeout bounded by ``time_left``.

    :param image: the openstacksdk image proxy
    """

    time_left = None    # set by the owner: a callable, seconds or None

    def __init__(self, image):
        self._image = image

    def get(self, image_id):
        """The ImageState of an image, None if it does not exist."""
        try:
            body = get_json(self._image, _path('/images/%s', image_id),
                            time_left=self.time_left)
        except sdk_exceptions.ResourceNotFound:
            return None
        return image_state(_json_object(body, what='image'))

    def latest(self, server_id):
        """The newest image with ``instance_uuid=server_id``, or None."""
        # The SDK's Image query mapping drops unknown filters such as
        # instance_uuid; the Image API itself filters on any property.
        body = get_json(
            self._image, '/images',
            params={'instance_uuid': server_id, 'sort_key': 'created_at',
                    'sort_dir': 'desc', 'limit': 1},
            time_left=self.time_left)
        images = _json_object(body, what='image list').get('images') or []
        if not images:
            return None
        return image_state(_json_object(images[0], what='image'))


class SnapshotLookup:
    """Cinder snapshot lookups for volume-backed servers (block storage).

    Each reads the Block Storage API's JSON through the proxy
    (:func:`get_json`), its read timeout bounded by ``time_left``.

    :param block_storage: the openstacksdk block-storage proxy
        (``client_manager.volume`` in OpenStackClient), or a function that
        returns it, called when a snapshot is first read
    """

    time_left = None    # set by the owner: a callable, seconds or None

    def __init__(self, block_storage):
        self._source = block_storage
        self._proxy = None

    @property
    def _volume(self):
        if self._proxy is None:
            self._proxy = resolve(self._source)
        return self._proxy

    def get(self, snapshot_id):
        """The SnapshotState of a snapshot, None if it does not exist."""
        try:
            body = get_json(self._volume,
                            _path('/snapshots/%s', snapshot_id),
                            time_left=self.time_left)
        except sdk_exceptions.ResourceNotFound:
            return None
        return snapshot_state(_json_object(body, 'snapshot', 'snapshot'))

    def of_volumes(self, volume_ids):
        """The snapshots of these volumes, newest first.

        One listing per volume; Cinder lists the newest first, so its first
        page (up to its ``osapi_max_limit``, 1000 by default) holds every
        snapshot still creating.
        """
        found = []
        for volume_id in volume_ids:
            body = get_json(self._volume, '/snapshots/detail',
                            params={'volume_id': volume_id},
                            time_left=self.time_left)
            found.extend(
                snapshot_state(_json_object(item, what='snapshot'))
                for item in _json_object(
                    body, what='snapshot list').get('snapshots') or [])
        return sorted(found, key=lambda s: s.created_at or '', reverse=True)

    def creating(self, volume_ids):
        return [s for s in self.of_volumes(volume_ids)
                if s.status == phases.SNAPSHOT_CREATING]


def resolve(proxy):
    """A proxy, or the result of the function that makes it."""
    if isinstance(proxy, types.FunctionType):
        return proxy()
    return proxy


def volume_ids(server):
    """IDs of the volumes of a volume-backed server; () if image-backed.

    Nova shows ``image`` as an empty string for a server booted from a
    volume; ``attached_volumes`` lists its volumes.
    """
    image = server.image
    if image is None:
        return ()   # not shown at all: nothing says volume-backed
    if (image.get('id') if isinstance(image, dict) else image):
        return ()
    return tuple(v['id'] for v in (server.attached_volumes or [])
                 if isinstance(v, dict) and v.get('id'))


RESOLVE_ATTEMPTS = 5


def find_server(compute, name_or_id, notify=None, sleep=time.sleep):
    """Resolve a server by name or ID, as ``openstack server show`` does.

    Transient faults (connection errors, 5xx, 429) are retried a few times
    with backoff, honouring Retry-After; others propagate.
    """
    for attempt in range(1, RESOLVE_ATTEMPTS + 1):
        try:
            return compute.find_server(name_or_id, ignore_missing=False)
        except Exception as exc:
            transient = transient_from(exc)
            if transient is None or attempt == RESOLVE_ATTEMPTS:
                raise
            if notify is not None and attempt == 1:
                notify('%s while looking up server %s; retrying'
                       % (transient, name_or_id))
            sleep(engine.backoff(attempt, transient.retry_after))


def make_watch(compute, image, tracks, block_storage=None, fleet=None,
               model=phases.DEFAULT_CAPTURE_MODEL, **options):
    """An engine.Watch over these proxies, each request bounded.

    ``options`` are those of :class:`~osc_snapphase.engine.Watch`; the
    server, image and volume-snapshot lookups get the watch's time left as
    their limit, and the server reads its ``clock`` and ``notify``.
    Without ``block_storage`` the Cinder snapshots of volume-backed
    servers are not followed (their capture stays unknown).

    :param fleet: None: watch the tracks given; a dict of listing filters
        (``{}`` for every server of the project, ``all_tenants``,
        ``name``): watch every server that the listing shows, as they come
        and go, each with a Track of capture model ``model``
    """
    reads = listing.ServerListing(
        compute, fleet=fleet is not None, filters=fleet,
        clock=options.get('clock') or time.monotonic)
    if fleet is not None:
        options.setdefault('new_track', lambda state: records.Track(
            state.id, state.name, capture_model=model))
    images = ImageLookup(image)
    snapshots = (SnapshotLookup(block_storage) if block_storage is not None
                 else None)
    result = engine.Watch(reads, tracks, images=images,
                          snapshots=snapshots, **options)
    for lookup in (reads, images, snapshots):
        if lookup is not None:
            lookup.time_left = result.time_left
    reads.notify = options.get('notify')
    reads.elapsed = result.elapsed
    reads.leave = lambda state: result.leave(state.id)
    return result


def capture_model(config=None, explicit=None):
    """The capture model: explicit, else the cloud's, else the default.

    :param config: the cloud's configuration (a dict such as
        ``CloudRegion.config``), whose ``snapphase_capture_model`` key holds
        the ``--os-snapphase-capture-model`` option, the
        ``OS_SNAPPHASE_CAPTURE_MODEL`` variable or the clouds.yaml key
    :raises ValueError: for an unknown model
    """
    value = explicit or (config or {}).get('snapphase_capture_model')
    return phases.check_model(value)


def watch(connection, servers=(), until=None, timeout=None,
          stall_timeout=None, interval=None, notify=None, images=(),
          capture_model=None, fleet=None, **engine_options):
    """Watch servers of an openstacksdk Connection; a Python API.

    Returns a :class:`~osc_snapphase.engine.Watch`: iterate over it for the
    :class:`~osc_snapphase.records.Change` rows, then read ``outcome``::

        import openstack
        from osc_snapphase import cloud

        conn = openstack.connect(cloud='mycloud')
        watch = cloud.watch(conn, ['db1'], until='disk-safe', timeout=600)
        for change in watch:
            print(change.task_state, change.capture, change.capture_evidence)
        print(watch.outcome.kind, watch.outcome.message)

    :param servers: names or IDs
    :param until: an ``--until`` condition string, or None (with
        ``images``: until each image-create has ended)
    :param images: names or IDs of images being created, to follow those
        image-creates (whatever the server backing)
    :param capture_model: ``image-status`` (default) or ``xenserver``; None:
        the connection's ``snapphase_capture_model`` setting
    :param fleet: a dict of server list filters (``{}``: every server of
        the project; ``{'all_tenants': True}``, ``{'name': '^web'}``) to
        watch every server that matches, as they come and go, instead of
        ``servers`` (see :class:`~osc_snapphase.engine.Watch`,
        ``new_track``); the watch's ``problems`` then hold the first
        failures (``engine.MAX_PROBLEMS``) and ``problem_count`` counts them
    :param engine_options: other options of
        :class:`~osc_snapphase.engine.Watch`: ``on_poll``, and ``clock``,
        ``sleep`` and ``wall`` (to run a watch on your own time source)
    """
    model = capture_model_of(connection, capture_model)
    tracks = []
    for name_or_id in servers:
        server = find_server(connection.compute, name_or_id, notify=notify)
        tracks.append(records.Track(server.id, server.name,
                                    capture_model=model,
                                    volume_ids=volume_ids(server)))
    for name_or_id in images:
        tracks.append(image_track(connection.compute, connection.image,
                                  connection.block_storage, name_or_id,
                                  model))
    condition = conditions.parse_until(until)
    if condition is None and images:
        condition = conditions.phase_over('upload')
    return make_watch(
        connection.compute, connection.image, tracks,
        block_storage=connection.block_storage, fleet=fleet, model=model,
        condition=condition, timeout=timeout,
        stall_timeout=stall_timeout, interval=interval, notify=notify,
        **engine_options)


def capture_model_of(connection, explicit=None):
    config = getattr(connection, 'config', None)
    return capture_model(getattr(config, 'config', None), explicit)


class ImageNotFollowable(Exception):
    """An image whose image-create cannot be followed."""


def image_track(compute, image_proxy, block_storage, name_or_id,
                model=phases.DEFAULT_CAPTURE_MODEL):
    """A Track following a known image-create.

    The server is the image's ``instance_uuid``; an image of a
    volume-backed server has none, so the server is found through its
    first Cinder snapshot's volume and that volume's attachment.
    """
    image = image_proxy.find_image(name_or_id, ignore_missing=False)
    state = ImageLookup(image_proxy).get(image.id)
    if state is None:
        raise sdk_exceptions.ResourceNotFound(
            'No Image found for %s' % name_or_id)
    server_id = state.instance_uuid
    if server_id is None and state.snapshot_ids and block_storage:
        snapshot = SnapshotLookup(block_storage).get(state.snapshot_ids[0])
        if snapshot is not None:
            volume = resolve(block_storage).get_volume(snapshot.volume_id)
            for attachment in volume.attachments or []:
                server_id = attachment.get('server_id') or server_id
    if server_id is None:
        raise ImageNotFollowable(
            'Image %s names no server (no instance_uuid, no attached '
            'volume snapshot): it is not the image of a server'
            % state.id)
    server = compute.get_server(server_id)
    return records.Track(server.id, server.name, image_id=state.id,
                         capture_model=model)
