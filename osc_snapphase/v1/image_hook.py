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

"""``--wait-phase`` for ``openstack server image create`` and ``openstack
server backup create``, as a cliff CommandHook."""

import json
import logging
import sys
import time

from cliff import columns
from cliff import hooks
from osc_lib.cli import format_columns
from osc_lib import exceptions

from osc_snapphase import cloud
from osc_snapphase import conditions
from osc_snapphase import engine
from osc_snapphase import phases
from osc_snapphase import records
from osc_snapphase import report
from osc_snapphase.v1 import common

LOG = logging.getLogger(__name__)

OPTION = '--wait-phase'
TIMEOUT_OPTION = '--wait-phase-timeout'
DEFAULT_TIMEOUT = 3600.0

EPILOG = (
    'osc-snapphase: --wait-phase returns as soon as the chosen phase of the '
    'image creation is over. The phases are named after Nova\'s task '
    'states. snapshot: the disk capture is proven complete (the snapshot '
    'image is saving, importing or active; for a volume-backed server every '
    'Cinder snapshot has left creating), after which guest writes are safe, '
    'on every Nova driver: libvirt copies file-backed disks in '
    'image_pending_upload and takes RBD snapshots in image_uploading, so no '
    'task state alone proves it. pending-upload: that, and the server is '
    'past image_pending_upload. upload: the image is active. '
    '--os-snapphase-capture-model xenserver judges by the task state '
    'instead (right only for the removed XenServer and Hyper-V drivers). '
    'Exit status: 0 done, 1 error, 2 usage error, 3 the image creation '
    'failed, 5 the server is busy with another task (no image was '
    'requested; retry once it is idle), 124 --wait-phase-timeout reached, '
    '130 interrupted, 143 terminated (the image creation goes on in the '
    'cloud). Type the command name in full: abbreviated command names do '
    'not load this option.'
)


class _JSONObject(dict):
    """A dict that prints as JSON.

    -f value and -f shell print ``str()`` of a column's machine-readable
    value: a plain dict would come out as Python.
    """

    def __str__(self):
        return json.dumps(self, sort_keys=False)


def _yaml_knows_json_objects():
    # cliff's yaml formatter (yaml.safe_dump) refuses dict subclasses; it
    # has imported yaml before it asks for the value. Importing yaml here
    # would slow every start-up.
    yaml = sys.modules.get('yaml')
    if yaml is not None:
        yaml.SafeDumper.add_representer(
            _JSONObject, yaml.SafeDumper.represent_dict)


class PhaseDurationsColumn(columns.FormattableColumn):
    """Seconds per observed phase, JSON-shaped in every format.

    A JSON object for machines (json, yaml, and the JSON text with value
    and shell) and the same JSON text in a table.
    """

    def human_readable(self):
        return str(_JSONObject(self._value))

    def machine_readable(self):
        _yaml_knows_json_objects()
        return _JSONObject(self._value)


def _phase(text):
    """argparse type of --wait-phase: the old phase names warn."""
    def warn(message):
        sys.stderr.write('openstack: warning: %s %s: %s\n'
                         % (OPTION, text, message))
    try:
        return conditions.wait_phase(text, warn)
    except conditions.ConditionError:
        return text   # argparse's choices say what is valid


class WaitPhaseHook(hooks.CommandHook):
    """Add --wait-phase to server image create and server backup create."""

    # Seams for tests: the clocks and sleep given to the engine.
    clock = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)
    wall = staticmethod(engine.utcnow)

    def get_parser(self, parser):
        parser.add_argument(
            OPTION,
            metavar='<phase>',
            type=_phase,
            choices=conditions.WAIT_PHASES,
            help='Wait until this phase of the image creation is over, then '
                 'return: snapshot (the disk capture is proven complete; '
                 'guest writes are safe again), pending-upload (that, and '
                 'the server is past image_pending_upload) or upload (the '
                 'image is active). Cannot be used with --wait '
                 '(osc-snapphase)',
        )
        parser.add_argument(
            TIMEOUT_OPTION,
            metavar='<seconds>',
            type=common.seconds(),
            default=DEFAULT_TIMEOUT,
            help='With --wait-phase, give up waiting after this many seconds '
                 'with exit status 124; the image creation goes on in the '
                 'cloud (default: %d) (osc-snapphase)' % DEFAULT_TIMEOUT,
        )
        return parser

    def get_epilog(self):
        return EPILOG

    def before(self, parsed_args):
        if not getattr(parsed_args, 'wait_phase', None):
            return parsed_args
        if getattr(parsed_args, 'wait', False):
            common.usage_error(
                'openstack %s' % (self.cmd.cmd_name or 'server image create'),
                'argument --wait-phase: not allowed with argument --wait')
        self._model = common.capture_model(self.cmd.app)
        compute = self.cmd.app.client_manager.compute
        try:
            with common.SignalTrap():
                server = cloud.find_server(
                    compute, parsed_args.server,
                    notify=lambda m: self.cmd.app.stderr.write(m + '\n'))
                state = common.current_state(server)
        except (KeyboardInterrupt, common.Terminated) as exc:
            kind = common.interruption(exc)
            self.cmd.app.stderr.write(
                '%s while looking up server %s; no image was requested\n'
                % (common.STOPPED_BY[kind], parsed_args.server))
            raise SystemExit(engine.EXIT_CODES[kind])
        if state.task_state is not None:
            entry = phases.describe(state.task_state)
            self.cmd.app.stderr.write(
                'Server %s (%s) is busy: task state %s (%s: %s); Nova would '
                'refuse a new image (HTTP 409), so none was created. Wait '
                'for it with: openstack server task-state watch %s --until '
                'idle\n' % (server.name, server.id, state.task_state,
                            entry.phase, entry.description, server.id))
            self.cmd.app.stderr.flush()
            raise SystemExit(engine.EXIT_CODES[engine.BUSY])
        self._volumes = cloud.volume_ids(server)
        if self._volumes and self._is_backup():
            raise exceptions.CommandError(
                'Server %s (%s) is volume-backed: Nova refuses a backup of '
                'a volume-backed server (HTTP 400), so none was requested. '
                'Snapshot its volumes with: openstack server image create '
                '%s --name <name> --wait-phase snapshot'
                % (server.name, server.id, server.id))
        self._server = server
        # From here until its ID is printed, a signal must not cut the
        # image request short: the cloud would create an image nobody
        # knows the ID of. A second signal goes through.
        self._trap = common.SignalTrap(
            defer=True,
            second='The image of server %s may still be created; see: '
                   'openstack image list --property instance_uuid=%s'
                   % (server.id, server.id))
        self._trap.install()
        return parsed_args

    def _is_backup(self):
        return 'backup' in (self.cmd.cmd_name or '')

    def after(self, parsed_args, return_code):
        if not getattr(parsed_args, 'wait_phase', None):
            return return_code
        columns, data = return_code
        image_id = dict(zip(columns, data)).get('id')
        server = self._server
        app = self.cmd.app
        phase = parsed_args.wait_phase
        trap = getattr(self, '_trap', None) or common.SignalTrap()
        trap.install()
        self._watch = None
        try:
            app.stderr.write(
                'Image %s of server %s (%s) requested; waiting for the end '
                'of the %s phase (timeout %s)\n' % (
                    image_id, server.name, server.id, phase,
                    records.format_duration(parsed_args.wait_phase_timeout)))
            app.stderr.flush()
            # The ID is out: a signal held meanwhile may act now.
            trap.raising()
            return self._wait(parsed_args, columns, data, image_id, trap)
        except (KeyboardInterrupt, common.Terminated) as exc:
            self._interrupted(common.interruption(exc),
                              self._watch.elapsed() if self._watch else 0.0,
                              image_id, phase)
        except cloud.NoTaskStates as exc:
            raise exceptions.CommandError(str(exc))
        finally:
            trap.uninstall()

    def _wait(self, parsed_args, columns, data, image_id, trap):
        app = self.cmd.app
        phase = parsed_args.wait_phase
        track = records.Track(self._server.id, self._server.name,
                              image_id=image_id, capture_model=self._model)
        status = common.StatusLine(app.stderr)
        block_storage = common.block_storage(app)
        if self._volumes:
            self._warn_other_snapshots(image_id, block_storage)

        width = report.terminal_width(app.stderr)

        def on_poll(watch):
            trap.check()
            status.show(report.progress(
                track, watch.elapsed(), phase,
                width=width - 1 if width else None))
        watch = self._watch = cloud.make_watch(
            app.client_manager.compute, app.client_manager.image, [track],
            block_storage=block_storage,
            condition=conditions.phase_over(phase),
            timeout=parsed_args.wait_phase_timeout,
            clock=self.clock, sleep=self.sleep, wall=self.wall,
            notify=lambda message: app.stderr.write(message + '\n'),
            on_poll=on_poll)
        try:
            for _change in watch:
                pass
        finally:
            status.clear()
        outcome = watch.outcome
        common.quick_exit()
        if outcome.kind != engine.MET:
            app.stderr.write(
                self._failure(outcome, track, image_id, phase) + '\n')
            app.stderr.flush()
            raise SystemExit(outcome.exit_code)
        return self._output(columns, data, track)

    def _warn_other_snapshots(self, image_id, block_storage):
        """Warn of other snapshots of the server's volumes still creating.

        Nova sets no task state for a volume-backed image-create, so it
        accepts another while the first one's snapshots are creating.
        """
        try:
            image = cloud.ImageLookup(self.cmd.app.client_manager.image).get(
                image_id)
            ours = set((image and image.snapshot_ids) or ())
            others = [s for s in cloud.SnapshotLookup(block_storage).creating(
                self._volumes) if s.id not in ours]
        except Exception as exc:   # a warning only: never fail on it
            LOG.debug('Cannot list the volume snapshots: %s', exc)
            return
        for snap in others:
            self.cmd.app.stderr.write(
                'Warning: volume %s of server %s has another snapshot still '
                'creating (%s, created %s): another image-create runs, which '
                'Nova does not refuse for a volume-backed server\n' % (
                    snap.volume_id, self._server.id, snap.id,
                    snap.created_at))

    def _interrupted(self, kind, elapsed, image_id, phase):
        """Say that the image creation goes on; exit 130 or 143."""
        server = self._server
        self.cmd.app.stderr.write(
            '%s after %s: the image creation of %s goes on in the cloud '
            '(image %s). To follow it: %s\n' % (
                common.STOPPED_BY[kind],
                records.format_duration(elapsed), server.name,
                image_id, follow_command(image_id, phase)))
        self.cmd.app.stderr.flush()
        raise SystemExit(engine.EXIT_CODES[kind])

    def _failure(self, outcome, track, image_id, phase):
        if outcome.kind == engine.TIMED_OUT:
            stuck = ''
            if track.task_state is not None and track.segments:
                last = track.segments[-1]
                unchanged = (last.end or last.start) - last.start
                if unchanged >= 0.5 * outcome.elapsed:
                    stuck = (' It may be stuck: task state %s has not changed '
                             '%s.' % (track.task_state, track.unchanged(
                                 last.end or last.start)))
            return (
                'Timed out after %s waiting for the end of the %s phase of '
                'server %s. The image creation goes on in the cloud: image '
                '%s, server in task state %s (%s).%s To keep following it: '
                '%s' % (
                    records.format_duration(outcome.elapsed), phase,
                    track.label, image_id, track.task_state or 'none',
                    phases.phase_of(track.task_state), stuck,
                    follow_command(image_id, phase)))
        detail = self._action_detail(track.server_id)
        return outcome.message + (' (Nova: %s)' % detail if detail else '')

    def _action_detail(self, server_id):
        """Error detail of the latest image action, when Nova gives one."""
        compute = self.cmd.app.client_manager.compute
        try:
            for action in compute.server_actions(server_id):
                if action.action not in ('createImage', 'createBackup'):
                    continue
                full = compute.get_server_action(action.request_id,
                                                 server_id)
                for event in full.events or []:
                    result = getattr(event, 'result', None)
                    if result is None and isinstance(event, dict):
                        result = event.get('result')
                    if result and result.lower() == 'error':
                        return (getattr(event, 'event', None)
                                or event.get('event')) + ' failed'
                return full.message or None
        except Exception as exc:  # detail only: never hide the failure
            LOG.debug('No instance action detail: %s', exc)
        return None

    def _output(self, columns, data, track):
        # Every column of the image read now, as core prints it after
        # --wait: the image core printed was read when it was queued
        # (no size, no checksum yet).
        info = dict(zip(columns, data))
        image = self.cmd.app.client_manager.image.get_image(info['id'])
        info.update(image_columns(image))
        info['server_phase'] = phases.phase_of(track.task_state)
        info['capture'] = track.capture.state
        info['capture_evidence'] = track.capture.evidence
        info['capture_model'] = track.capture.model
        info['phase_durations'] = PhaseDurationsColumn({
            phase: round(seconds, 3) for phase, seconds in
            track.phase_durations().items()})
        names, values = zip(*sorted(info.items()))
        return names, values


def follow_command(image_id, phase):
    """The watch that goes on waiting as --wait-phase <phase> did."""
    return ('openstack server task-state watch --image %s --until '
            'phase-over=%s' % (image_id, phase))


# The image fields that `server image create` prints as columns of their
# own, by their Image API names; the others but tags and location go into
# its "properties" column.
IMAGE_COLUMNS = frozenset((
    'checksum', 'container_format', 'created_at', 'disk_format', 'file',
    'id', 'min_disk', 'min_ram', 'name', 'owner', 'protected', 'schema',
    'size', 'status', 'updated_at', 'virtual_size', 'visibility'))


def image_columns(image):
    """An openstacksdk Image as ``server image create`` prints it.

    ``{column: value}``: the fields of IMAGE_COLUMNS, ``tags`` as a list
    column and every other field (the image properties Nova set, such as
    ``instance_uuid``, and the Image API's ``os_*`` fields) in a
    ``properties`` dict column, as OpenStackClient does.
    """
    data = image.to_dict(ignore_none=True, original_names=True)
    info = {}
    properties = {}
    for key, value in data.items():
        if key in IMAGE_COLUMNS:
            info[key] = value
        elif key == 'properties':
            properties.update(value)
        elif key not in ('tags', 'location'):
            properties[key] = value
    info['tags'] = format_columns.ListColumn(data.get('tags') or [])
    if properties:
        info['properties'] = format_columns.DictColumn(properties)
    return info
