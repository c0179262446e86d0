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

"""Docs that run (issue 15 item 9): every ``openstack`` command of the
docs is run against the bundled simulator, and help texts are plain text.

What is run, in ``README.rst`` and every ``doc/source/**/*.rst``:

* in a ``.. code-block:: console`` block, each ``$ openstack ...`` line
  (with its ``\\`` continuation lines), through ``bash -o pipefail`` so
  that pipes and quotes work as typed. Its exit status must be 0, or the
  number the docs print after it with ``$ echo $?``. Other ``$`` lines
  (``ssh``, ``export``, ``curl``, ``python -m osc_snapphase.simulator``)
  are not run, nor lines without ``$`` (output, synopses). A UUID shown
  in the output of a command stands, in the later commands of the same
  file, for the one the command really printed (when both show as many);
* a ``.. code-block:: bash`` (or ``sh``, ``shell``) block that runs
  ``openstack``, as one script in a scratch directory, ``ssh`` replaced by
  a stub that does nothing; it must exit 0.

Each file gets a simulator (libvirt-file order, short phases) with the
servers the docs name: ``db1``, ``db2``, ``db3``, ``web1``, ``rbd1``
(libvirt-rbd order) and ``vol1`` (volume-backed), unless the file creates
one itself with ``openstack server create``; ``OS_CLOUD`` names its cloud.
Before each block, and before each command that creates an image, the
test waits until no image operation runs. A ``watch`` of an idle server
would end at once, so before a console ``watch`` command the test starts
an image-create of each server it names that is idle, and before a
script that watches but creates no image, of each server its watches
name: the examples follow an operation, as the docs describe.

An RST comment right before a code block changes how it is run (it is
not rendered):

``.. snapphase-example: skip <reason>``
    the block is not run;
``.. snapphase-example: admin``
    its commands run with the simulator's admin cloud;
``.. snapphase-example: image-create <server> ...``
    an image-create of these servers is started before the block.

A failing command (another exit status, a traceback, a password or token
in its output, no end) fails the test of its file, naming the file and
the line of the command, with its exit status and output.
"""

import glob
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time

import fixtures
import testtools

from osc_snapphase.tests import cli
from osc_snapphase.tests.functional import reliability

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..',
                                    '..'))
# The servers the docs name, and how the simulator creates them.
SERVERS = {
    'db1': {},
    'db2': {},
    'db3': {},
    'web1': {},
    'rbd1': {'driver': 'libvirt-rbd'},
    'vol1': {'volume_backed': True},
}
# Short phases: a whole image-create takes a few seconds.
DURATIONS = {
    'build': 0.2,
    'pending': 0.2,
    'snapshot': 0.5,
    'backup': 0.5,
    'pending_upload': 0.3,
    'copy': 0.5,
    'bounce': 50,
    'rbd_snapshot': 0.2,
    'flatten': 0.5,
    'uploading': 1.0,
    'volume_snapshot': 0.5,
}
# A command or script that runs longer has not ended: a wait that never
# ends (a watch without --until), not a slow machine.
COMMAND_TIMEOUT = 300
# Waits for the simulator to be idle between examples.
IDLE_TIMEOUT = 300
MARK = re.compile(r'^\s*\.\. snapphase-example:\s*(.*?)\s*$')
DIRECTIVE = re.compile(r'^(\s*)\.\. code-block::\s*(\S+)\s*$')
SCRIPT_LANGUAGES = ('bash', 'sh', 'shell')
RUNS_OPENSTACK = re.compile(r'(^|[\s;&|(`])openstack\s', re.M)
CREATES_IMAGE = re.compile(r'openstack\s+server\s+(image|backup)\s+create')
UUID = re.compile(
    r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')
# RST markup that must not show in a help text in the terminal.
RST_MARKUP = re.compile(r'``|:(ref|doc|option|command|term):`|^\.\. ',
                        re.M)
HELP_COMMANDS = (
    'server task-state show',
    'server task-state watch',
    'server image create',
    'server backup create',
)


class Example:
    """One thing to run: a console command or a whole script."""

    def __init__(self, path, line, kind, text, block):
        self.path = path
        self.line = line
        self.kind = kind          # 'console' or 'script'
        self.text = text
        self.block = block
        self.expect = 0
        self.output = []          # documented output lines (console)

    @property
    def where(self):
        return '%s:%d' % (os.path.relpath(self.path, ROOT), self.line)

    def words(self):
        try:
            return shlex.split(self.text.replace('\\\n', ' '),
                               comments=True)
        except ValueError:
            return self.text.split()


class Block:
    """A code block of the docs and the comment marks before it."""

    def __init__(self, path, line, language, marks):
        self.path = path
        self.line = line
        self.language = language
        self.marks = marks
        self.examples = []

    def mark(self, name):
        for words in self.marks:
            if words and words[0] == name:
                return words[1:]
        return None


def doc_files():
    files = [os.path.join(ROOT, 'README.rst')]
    files += sorted(glob.glob(os.path.join(ROOT, 'doc', 'source', '**',
                                           '*.rst'), recursive=True))
    return [f for f in files if os.path.exists(f)]


def parse(path):
    """The code blocks of an RST file that run ``openstack``."""
    with open(path) as stream:
        lines = stream.read().splitlines()
    blocks = []
    marks = []
    index = 0
    while index < len(lines):
        mark = MARK.match(lines[index])
        directive = DIRECTIVE.match(lines[index])
        index += 1
        if mark:
            marks.append(mark.group(1).split())
            continue
        if not directive:
            continue
        indent = len(directive.group(1))
        start = index
        body = []
        while index < len(lines):
            text = lines[index]
            if text.strip() and len(text) - len(text.lstrip()) <= indent:
                break
            body.append((index + 1, text))
            index += 1
        block = Block(path, start, directive.group(2), marks)
        marks = []
        _read_body(block, _dedent(body))
        if block.examples:
            blocks.append(block)
    return blocks


def _dedent(body):
    """Body lines without the block's indent and leading options."""
    lines = [(n, t) for n, t in body]
    while lines and (not lines[0][1].strip()
                     or lines[0][1].strip().startswith(':')):
        lines.pop(0)
    while lines and not lines[-1][1].strip():
        lines.pop()
    width = min((len(t) - len(t.lstrip()) for _n, t in lines if t.strip()),
                default=0)
    return [(n, t[width:]) for n, t in lines]


def _read_body(block, lines):
    if block.language in SCRIPT_LANGUAGES:
        text = '\n'.join(t for _n, t in lines) + '\n'
        if lines and RUNS_OPENSTACK.search(text):
            block.examples.append(
                Example(block.path, lines[0][0], 'script', text, block))
        return
    if block.language != 'console':
        return
    last = None       # the last openstack command
    current = None    # the command whose output lines follow
    position = 0
    while position < len(lines):
        number, text = lines[position]
        position += 1
        if not text.startswith('$ '):
            if current is not None:
                current.output.append(text)
            continue
        command = [text[2:]]
        while command[-1].endswith('\\') and position < len(lines):
            command.append(lines[position][1])
            position += 1
        command = '\n'.join(command)
        current = Example(block.path, number, 'console', command, block)
        words = current.words()
        if words[:1] == ['openstack']:
            block.examples.append(current)
            last = current
        elif words == ['echo', '$?'] and last is not None:
            # The status the docs show is the next line.
            if position < len(lines) and lines[position][1].isdigit():
                last.expect = int(lines[position][1])
                position += 1
            current = None
        else:
            current = None


def doc_examples():
    return [example for path in doc_files() for block in parse(path)
            for example in block.examples]


class TestDocExamplesFound(testtools.TestCase):
    """The parser finds the examples it must run (no simulator)."""

    def test_examples_found(self):
        examples = doc_examples()
        where = {os.path.relpath(e.path, ROOT) for e in examples}
        for required in ('README.rst', 'doc/source/user/index.rst',
                         'doc/source/user/capture.rst',
                         'doc/source/user/volume-backed.rst'):
            self.assertIn(required, where)
        texts = [e.text for e in examples]
        backups = [t for t in texts if 'server backup create' in t
                   and '--rotate 7' in t]
        self.assertTrue(backups, 'the backup example is not run')
        self.assertTrue(any(e.kind == 'script' for e in examples))
        self.assertTrue(any(e.expect == 1 for e in examples),
                        'no command with a documented exit status')

    def test_every_dollar_openstack_line_is_run(self):
        """No ``$ openstack`` line is left out (a ``::`` block, say)."""
        typed = set()
        for path in doc_files():
            with open(path) as stream:
                for number, line in enumerate(stream, 1):
                    if re.match(r'\s*\$ openstack\s', line):
                        typed.add('%s:%d' % (os.path.relpath(path, ROOT),
                                             number))
        found = {e.where for e in doc_examples() if e.kind == 'console'}
        self.assertEqual(set(), typed - found,
                         'lines that look like commands but are not run '
                         '(use .. code-block:: console)')

    def test_parse_console_and_script(self):
        with tempfile.NamedTemporaryFile('w', suffix='.rst') as doc:
            doc.write(
                'Text\n\n'
                '.. code-block:: console\n\n'
                '   $ openstack server task-state show db1\n'
                '   output\n'
                '   $ openstack server image create db1 \\\n'
                '       --name x\n'
                '   $ echo $?\n'
                '   5\n'
                '   $ ssh db1 true\n\n'
                '.. snapphase-example: skip a placeholder\n\n'
                '.. code-block:: bash\n\n'
                '   openstack server task-state watch <server>\n\n'
                '.. code-block:: python\n\n'
                '   openstack = None\n')
            doc.flush()
            blocks = parse(doc.name)
        self.assertEqual(2, len(blocks))
        show, create = blocks[0].examples
        self.assertEqual((5, 0, ['output']), (show.line, show.expect,
                                              show.output))
        self.assertEqual(7, create.line)
        self.assertEqual(5, create.expect)
        self.assertIn('--name x', create.text)
        self.assertEqual(['a', 'placeholder'], blocks[1].mark('skip'))
        self.assertEqual('script', blocks[1].examples[0].kind)


class TestHelpIsPlainText(testtools.TestCase):
    """Help texts show no RST markup in the terminal."""

    def test_help_texts_have_no_rst_markup(self):
        problems = []
        for command in HELP_COMMANDS:
            result = cli.run(['help'] + command.split(), cli.environ(),
                             timeout=COMMAND_TIMEOUT)
            self.assertEqual(0, result.returncode, result)
            for number, line in enumerate(result.stdout.splitlines(), 1):
                if RST_MARKUP.search(line):
                    problems.append('openstack help %s, line %d: %s'
                                    % (command, number, line.strip()))
        self.assertEqual([], problems, 'RST markup in help texts')


class TestDocsRun(reliability.ReliabilityTestCase):
    """Each doc file's examples, run against a simulator of its own."""

    durations = DURATIONS

    def setUp(self):
        super().setUp()
        self.control.configure(driver='libvirt-file')
        self.scratch = self.useFixture(fixtures.TempDir()).path
        stubs = os.path.join(self.scratch, '.stubs')
        os.mkdir(stubs)
        ssh = os.path.join(stubs, 'ssh')
        with open(ssh, 'w') as stream:
            stream.write('#!/bin/sh\n# ssh of the docs: does nothing\n')
        os.chmod(ssh, 0o755)
        self.search_path = os.pathsep.join([
            stubs, os.path.dirname(cli.executable()),
            os.environ.get('PATH', '')])
        self.uuids = {}

    # -- the state the examples need ----------------------------------

    def create_servers(self, blocks):
        created_by_docs = set()
        for block in blocks:
            for example in block.examples:
                words = example.words()
                if words[1:3] == ['server', 'create']:
                    created_by_docs.add(words[-1])
        for name, fields in SERVERS.items():
            if name not in created_by_docs:
                self.create_server(name, **fields)

    def server_ids(self, names):
        by_name = {s['name']: s['id']
                   for s in self.control.state()['servers']}
        return [by_name[n] for n in names if n in by_name]

    @staticmethod
    def busy(state):
        """IDs of servers with an image operation or a task state."""
        busy = {op['server_id'] for op in state['operations']}
        busy.update(s['id'] for s in state['servers']
                    if s['OS-EXT-STS:task_state'])
        volumes = {s['volume_id'] for s in state['volume_snapshots']
                   if s['status'] == 'creating'}
        for server in state['servers']:
            attached = server.get('os-extended-volumes:volumes_attached')
            if volumes & {v['id'] for v in attached or ()}:
                busy.add(server['id'])
        return busy

    def wait_idle(self, example):
        try:
            self.control.wait_for(lambda state: not self.busy(state),
                                  timeout=IDLE_TIMEOUT, interval=0.1)
        except TimeoutError:
            self.fail('%s: an image operation still runs %ss after the '
                      'previous example' % (example.where, IDLE_TIMEOUT))

    def start_operations(self, names):
        """Start an image-create of each idle server named."""
        busy = self.busy(self.control.state())
        for server_id in _distinct(self.server_ids(names)):
            if server_id not in busy:
                self.api_create_image(server_id, name='docs-example')

    def watched(self, words):
        if 'watch' not in words:
            return []
        return [w for w in words[words.index('watch') + 1:]
                if w in SERVERS]

    # -- running -------------------------------------------------------

    def substitute(self, text):
        for documented, real in self.uuids.items():
            text = text.replace(documented, real)
        return text

    def remember_uuids(self, example, stdout):
        documented = _distinct(UUID.findall('\n'.join(example.output)))
        printed = _distinct(UUID.findall(stdout))
        if documented and len(documented) == len(printed):
            self.uuids.update(zip(documented, printed))

    def shell(self, argv, example, cwd):
        cloud = self.sim.cloud_name
        if example.block.mark('admin') is not None:
            cloud += '-admin'
        env = self.environ(cloud=cloud)
        env['PATH'] = self.search_path
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            return None, stdout, stderr
        return proc.returncode, stdout, stderr

    def run_example(self, example):
        """Run one example; return a failure message or None."""
        if example.kind == 'script':
            script = os.path.join(self.scratch, 'example-%d.sh'
                                  % example.line)
            with open(script, 'w') as stream:
                stream.write(self.substitute(example.text))
            argv = ['bash', script]
        else:
            argv = ['bash', '-o', 'pipefail', '-c',
                    self.substitute(example.text)]
        started = time.monotonic()
        status, stdout, stderr = self.shell(argv, example, self.scratch)
        leaked = any(secret in stdout + stderr
                     for secret in self.control.secret_values())
        if (status == example.expect and 'Traceback' not in stderr
                and not leaked):
            if example.kind == 'console':
                self.remember_uuids(example, stdout)
            return None
        if status is None:
            what = 'did not end within %ss' % COMMAND_TIMEOUT
        elif status != example.expect:
            what = 'exit status %d, the docs expect %d' % (status,
                                                           example.expect)
        elif leaked:
            what = 'a password or token of the simulator in the output'
        else:
            what = 'a traceback on stderr'
        if status == 127:
            what += ' (a tool the example runs is not installed?)'
        return ('%s: %s (after %.0fs)\n%s\n--- stdout:\n%s--- stderr:\n%s'
                % (example.where, what, time.monotonic() - started,
                   example.text, stdout[-2000:], stderr[-2000:]))

    def check_file(self, path):
        blocks = [b for b in parse(path) if b.mark('skip') is None]
        self.create_servers(blocks)
        failures = []
        for block in blocks:
            self.wait_idle(block.examples[0])
            self.start_operations(block.mark('image-create') or [])
            for example in block.examples:
                words = example.words()
                if example.kind == 'console':
                    if CREATES_IMAGE.search(example.text):
                        self.wait_idle(example)
                    self.start_operations(self.watched(words))
                elif not CREATES_IMAGE.search(example.text):
                    self.start_operations(self.script_watched(example))
                failure = self.run_example(example)
                if failure:
                    failures.append(failure)
        if failures:
            self.fail('%d of the examples of %s do not run:\n\n%s' % (
                len(failures), os.path.relpath(path, ROOT),
                '\n\n'.join(failures)))

    def script_watched(self, example):
        names = []
        for line in example.text.splitlines():
            if 'task-state watch' in line:
                names += [w for w in line.replace('\\', ' ').split()
                          if w in SERVERS]
        return names


def _distinct(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _add_file_tests():
    """One test per doc file that has examples to run."""
    for path in doc_files():
        if not any(b.mark('skip') is None for b in parse(path)):
            continue
        slug = re.sub(r'\W+', '_', os.path.relpath(path, ROOT)
                      .rsplit('.', 1)[0]).strip('_').lower()

        def test(self, path=path):
            self.check_file(path)
        test.__name__ = 'test_%s' % slug
        test.__doc__ = 'The examples of %s run' % os.path.relpath(
            path, ROOT)
        setattr(TestDocsRun, test.__name__, test)


_add_file_tests()
