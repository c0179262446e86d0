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

"""The osc-snapphase demo: a whole image-create on the bundled simulator.

Run by ``tox -e demo``. It starts ``python -m osc_snapphase.simulator`` on
127.0.0.1 with the order of the Nova libvirt driver on file-backed disks,
boots a server with the unmodified ``openstack`` CLI, creates images and
shows every phase with ``openstack server task-state show`` (each phase is
held by the simulator's control endpoint, so this works on any machine),
``openstack server task-state watch`` and ``--wait-phase``, then stops the
simulator; nothing is left running. Every command is printed so that it can
be pasted into a shell while the demo runs.
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time

from osc_snapphase.simulator import client

DRIVER = 'libvirt-file'
# Seconds (bounce: ms); the copy is the second image_pending_upload.
DURATIONS = 'pending=0.5,snapshot=2,bounce=5,copy=3,uploading=5'
OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')
# The read of one server: a watch of one named server polls with it.
GET_SERVER = 'GET /compute/v2.1/servers/{id}'
# The steps of a libvirt-file image-create, each held in turn.
HELD_STEPS = (
    ('pending', 'image_snapshot_pending: the API has accepted the request; '
     'compute has not started'),
    ('snapshot', 'image_snapshot: libvirt prepares; nothing is copied yet'),
    ('pending_upload', 'the first image_pending_upload lasts milliseconds '
     'on libvirt'),
    ('bounce', 'the image_uploading "bounce": the image is still queued, '
     'so this is no proof that the disk was copied'),
    ('copy', 'the second image_pending_upload: the disk copy runs now '
     '(libvirt live snapshot); the guest must stay quiet'),
    ('uploading', 'image_uploading with the image saving: the copy is '
     'over, only the upload runs'),
)


def say(text):
    print('\n### %s' % text, flush=True)


def run(*args, check=True, quiet=False):
    """Run the openstack CLI, echo the command and its output."""
    print('$ %s' % shlex.join(['openstack'] + list(args)), flush=True)
    result = subprocess.run([OPENSTACK] + list(args), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if not quiet:
        sys.stdout.write(result.stdout)
    if result.returncode:
        print('(exit status %d)' % result.returncode)
    sys.stdout.flush()
    if check and result.returncode:
        raise SystemExit('demo step failed: openstack %s' % ' '.join(args))
    return result


def start_simulator(state_dir):
    ready = os.path.join(state_dir, 'ready.json')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'osc_snapphase.simulator',
         '--state-dir', state_dir, '--ready-file', ready,
         '--driver', DRIVER, '--durations', DURATIONS],
        stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit('the simulator did not start')
        time.sleep(0.05)
    with open(ready) as stream:
        proc.control = client.ControlClient(json.load(stream)['control_url'])
    return proc


def held_walk(control, server, image_name):
    """Hold each step of an image-create and show the server in it."""
    control.hold(HELD_STEPS[0][0], server)
    run('server', 'image', 'create', server, '--name', image_name, '-c',
        'id', '-c', 'status')
    for index, (step, text) in enumerate(HELD_STEPS):
        control.wait_held(step, server)
        image = next(i for i in control.state()['images']
                     if i['name'] == image_name)
        print('\n-- held: %s (image %s)' % (text, image['status']))
        run('server', 'task-state', 'show', server)
        if index + 1 < len(HELD_STEPS):
            control.hold(HELD_STEPS[index + 1][0], server)
        control.release(step, server)
    control.wait_for(lambda state: not any(
        op['image_id'] == image['id'] for op in state['operations']))
    print('\n-- done: the image is active, the server idle')
    run('server', 'task-state', 'show', server)


def main():
    with tempfile.TemporaryDirectory(prefix='snapphase-demo-') as state_dir:
        say('Starting the bundled simulator (Keystone, Nova, Glance, Cinder '
            'on 127.0.0.1)')
        proc = start_simulator(state_dir)
        os.environ['OS_CLIENT_CONFIG_FILE'] = os.path.join(state_dir,
                                                           'clouds.yaml')
        os.environ['OS_CLOUD'] = 'snapsim'
        print('(to paste the commands below while the demo runs:)\n'
              'export OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=snapsim' % shlex.quote(
                  os.environ['OS_CLIENT_CONFIG_FILE']))
        try:
            demo(proc.control)
        finally:
            say('Stopping the simulator')
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            print('simulator stopped (exit status %s)' % proc.returncode)


def release_when_watched(control, step, server):
    """Release step once the watch has polled the server in it.

    Resolving the name costs one GET_SERVER (the name, 404) and a listing;
    each poll then costs one GET_SERVER, logged when it arrives. Three
    more make sure a poll was answered while the step was held (as
    release_after_polls of the functional tests).
    """
    def server_gets():
        return control.request_counts().get(GET_SERVER, 0)
    before = server_gets()

    def wait_and_release():
        deadline = time.monotonic() + 120
        while server_gets() < before + 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        control.release(step, server)
    thread = threading.Thread(target=wait_and_release, daemon=True)
    thread.start()
    return thread


def demo(control):
    say('Booting a server with the unmodified CLI')
    run('server', 'create', '--flavor', 'm1.tiny', '--image', 'cirros',
        '--nic', 'none', '--wait', 'db1', '-c', 'id', '-c', 'name', '-c',
        'status')
    run('server', 'task-state', 'show', 'db1')

    say('Core image create (no wait), then task-state show in each phase '
        '(the simulator holds each one; Nova libvirt order, file-backed '
        'disk)')
    held_walk(control, 'db1', 'db1-a')

    say('Watching a whole image-create until the server is idle again '
        '(held in image_snapshot until the watch has started)')
    control.hold('snapshot', 'db1')
    run('server', 'image', 'create', 'db1', '--name', 'db1-b', '-c', 'id')
    control.wait_held('snapshot', 'db1')
    releaser = release_when_watched(control, 'snapshot', 'db1')
    run('server', 'task-state', 'watch', 'db1', '--until', 'idle',
        '--timeout', '120')
    releaser.join()

    say('A second image-create while one runs is refused; we say so '
        'before creating anything (exit status 5: busy, try later)')
    control.hold('snapshot', 'db1')
    run('server', 'image', 'create', 'db1', '--name', 'db1-c', '-c', 'id')
    control.wait_held('snapshot', 'db1')
    run('server', 'image', 'create', 'db1', '--name', 'db1-d',
        '--wait-phase', 'snapshot', check=False)
    releaser = release_when_watched(control, 'snapshot', 'db1')
    run('server', 'task-state', 'watch', 'db1', '--until', 'idle', '-f',
        'value', '-c', 'Time', '-c', 'Task State', '-c', 'Phase')
    releaser.join()

    say('The seed workflow: return as soon as the disk capture is over')
    print('(here a database would be stopped; the simulator holds the '
          'upload until the watch below has started)')
    # libvirt-file goes through image_uploading twice: the simulator's
    # step 'bounce', then 'uploading', the upload once the disk is copied
    # (the image saving: the capture is over), held until released.
    control.hold('uploading', 'db1')
    run('server', 'image', 'create', 'db1', '--name', 'db1-nightly',
        '--wait-phase', 'snapshot', '-c', 'id', '-c', 'status', '-c',
        'server_phase', '-c', 'phase_durations')
    print('(here the database starts again, while the upload goes on)')
    run('server', 'task-state', 'show', 'db1', '-c', 'task_state', '-c',
        'phase', '-c', 'disk_writes_safe')
    releaser = release_when_watched(control, 'uploading', 'db1')
    run('server', 'task-state', 'watch', 'db1', '--until', 'idle',
        '--stream', '-f', 'json')
    releaser.join()
    run('image', 'list', '-c', 'Name', '-c', 'Status')


if __name__ == '__main__':
    main()
