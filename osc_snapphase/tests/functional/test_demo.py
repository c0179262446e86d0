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

"""The demo (``tox -e demo``) shows every phase and prints commands that
can be pasted (issue 15 item 9).

It runs ``tools/demo.py`` to its end: the demo holds each step with the
simulator's control endpoint, so what it shows does not depend on the
speed of the machine.
"""

import json
import os
import re
import shlex
import subprocess
import sys

import testtools
from testtools import content

from osc_snapphase.tests import cli

DEMO = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'tools',
                    'demo.py')
# The demo ends by itself; this only stops a hung one.
TIMEOUT = 1800
TASK_STATE_FIELD = re.compile(r'^\| task_state\s+\| (\S+)\s+\|$')
SHOW_WALK = ['image_snapshot_pending', 'image_snapshot',
             'image_pending_upload', 'image_uploading',
             'image_pending_upload', 'image_uploading', 'None']


class TestDemo(testtools.TestCase):
    """One run of the demo (minutes on a loaded machine), checked whole."""

    def run_demo(self):
        env = cli.environ()
        env['PATH'] = os.pathsep.join([os.path.dirname(sys.executable),
                                       env.get('PATH', '')])
        self.result = subprocess.run(
            [sys.executable, DEMO], env=env, capture_output=True,
            text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
        self.out = self.result.stdout
        self.addDetail('demo-output', content.text_content(
            self.out + self.result.stderr))

    def section(self, title):
        """The output of one ``### title`` section of the demo."""
        start = self.out.index('### ' + title)
        end = self.out.find('\n### ', start + 1)
        return self.out[start:end if end >= 0 else None]

    def test_demo(self):
        self.run_demo()
        self.assertEqual(0, self.result.returncode)
        self.assertNotIn('Traceback', self.out + self.result.stderr)
        # task-state show in every step of a libvirt-file image-create.
        walk = self.section('Core image create')
        states = [m.group(1) for m in map(TASK_STATE_FIELD.match,
                                          walk.splitlines()) if m]
        self.assertEqual(SHOW_WALK, states)
        # The watch shows each phase.
        watch = self.section('Watching a whole image-create')
        for phase in ('snapshot', 'pending-upload', 'upload', 'idle'):
            self.assertIn(' %s ' % phase, watch)
        busy = self.section('A second image-create')
        self.assertIn('is busy', busy)
        for phase in ('snapshot', 'pending-upload', 'upload', 'idle'):
            self.assertIn(' %s\n' % phase, busy)
        # After --wait-phase snapshot the upload goes on, and the watch
        # sees it end.
        seed = self.section('The seed workflow')
        rows = [json.loads(line) for line in seed.splitlines()
                if line.startswith('{')]
        self.assertEqual(['upload', 'idle'], [r['Phase'] for r in rows])
        self.check_commands_can_be_pasted()

    def check_commands_can_be_pasted(self):
        commands = [line[2:] for line in self.out.splitlines()
                    if line.startswith('$ ')]
        self.assertGreater(len(commands), 10)
        for command in commands:
            words = shlex.split(command)
            self.assertEqual('openstack', words[0], command)
            # Pasted into a shell, the command gives these words.
            self.assertEqual(command, shlex.join(words))
        self.assertIn("-c 'Task State'", self.out)
        export = [line for line in self.out.splitlines()
                  if line.startswith('export OS_CLIENT_CONFIG_FILE=')]
        self.assertEqual(1, len(export))
