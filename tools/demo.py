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
127.0.0.1, boots a server with the unmodified ``openstack`` CLI, creates
images and shows every phase with ``openstack server task-state show``,
``openstack server task-state watch`` and ``--wait-phase``, then stops the
simulator; nothing is left running.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

DURATIONS = 'pending=0.5,snapshot=3,pending_upload=1.5,uploading=6'
OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')


def say(text):
    print('\n### %s' % text, flush=True)


def run(*args, check=True, quiet=False):
    """Run the openstack CLI, echo the command and its output."""
    print('$ openstack %s' % ' '.join(args), flush=True)
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
         '--durations', DURATIONS],
        stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit('the simulator did not start')
        time.sleep(0.05)
    return proc


def show_phases(server):
    """Sample task-state show until idle, printing each new phase once."""
    seen = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = subprocess.run(
            [OPENSTACK, 'server', 'task-state', 'show', server, '-f',
             'json'], text=True, stdout=subprocess.PIPE, check=True)
        state = json.loads(result.stdout)
        key = (state['task_state'], state['phase'])
        if key != seen:
            seen = key
            print('  task_state=%-22s phase=%-12s disk_writes_safe=%-5s '
                  'image_create_allowed=%s' % (
                      state['task_state'], state['phase'],
                      state['disk_writes_safe'],
                      state['image_create_allowed']), flush=True)
        if state['task_state'] is None:
            return
        time.sleep(0.2)


def main():
    with tempfile.TemporaryDirectory(prefix='snapphase-demo-') as state_dir:
        say('Starting the bundled simulator (Keystone, Nova, Glance on '
            '127.0.0.1)')
        proc = start_simulator(state_dir)
        os.environ['OS_CLIENT_CONFIG_FILE'] = os.path.join(state_dir,
                                                           'clouds.yaml')
        os.environ['OS_CLOUD'] = 'snapsim'
        try:
            demo()
        finally:
            say('Stopping the simulator')
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            print('simulator stopped (exit status %s)' % proc.returncode)


def demo():
    say('Booting a server with the unmodified CLI')
    run('server', 'create', '--flavor', 'm1.tiny', '--image', 'cirros',
        '--nic', 'none', '--wait', 'db1', '-c', 'id', '-c', 'name', '-c',
        'status')
    run('server', 'task-state', 'show', 'db1')

    say('Core image create (no wait), then task-state show in each phase')
    run('server', 'image', 'create', 'db1', '--name', 'db1-a', '-c', 'id',
        '-c', 'status')
    show_phases('db1')

    say('Watching a whole image-create until the server is idle again')
    run('server', 'image', 'create', 'db1', '--name', 'db1-b', '-c', 'id')
    run('server', 'task-state', 'watch', 'db1', '--until', 'idle',
        '--timeout', '120')

    say('A second image-create while one runs is refused; we say so '
        'before creating anything')
    run('server', 'image', 'create', 'db1', '--name', 'db1-c', '-c', 'id')
    run('server', 'image', 'create', 'db1', '--name', 'db1-d',
        '--wait-phase', 'snapshot', check=False)
    run('server', 'task-state', 'watch', 'db1', '--until', 'idle', '-f',
        'value', '-c', 'Time', '-c', 'Task State', '-c', 'Phase')

    say('The seed workflow: return as soon as the disk capture is over')
    print('(here a database would be stopped)')
    run('server', 'image', 'create', 'db1', '--name', 'db1-nightly',
        '--wait-phase', 'snapshot', '-c', 'id', '-c', 'status', '-c',
        'server_phase', '-c', 'phase_durations')
    print('(here the database starts again, while the upload goes on)')
    run('server', 'task-state', 'show', 'db1', '-c', 'task_state', '-c',
        'phase', '-c', 'disk_writes_safe')
    run('server', 'task-state', 'watch', 'db1', '--until', 'idle',
        '--stream', '-f', 'json')
    run('image', 'list', '-c', 'Name', '-c', 'Status')


if __name__ == '__main__':
    main()
