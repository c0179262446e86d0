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


"""Tests of the plugin module and the entry points."""

import argparse
import configparser
import importlib.metadata
import io
import os
import subprocess
import sys
from unittest import mock

import testtools

import osc_snapphase

SETUP_CFG = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(osc_snapphase.__file__))),
    'setup.cfg')
FORBIDDEN = ('openstack', 'openstackclient', 'osc_lib', 'cliff',
             'keystoneauth1', 'requests', 'stevedore')


def _entry_point(group, name):
    for ep in importlib.metadata.entry_points(group=group):
        if ep.name == name:
            return ep
    raise AssertionError('no entry point %s in %s' % (name, group))


def _imported(code):
    """Top-level names of the modules imported by ``python -c code``."""
    result = subprocess.run(
        [sys.executable, '-X', 'importtime', '-c', code],
        capture_output=True, text=True, check=True, timeout=60)
    names = set()
    for line in result.stderr.splitlines():
        if not line.startswith('import time:') or '|' not in line:
            continue
        module = line.rsplit('|', 1)[1].strip()
        if module and module != 'package':
            names.add(module.split('.')[0])
    return names


class TestPlugin(testtools.TestCase):

    def test_plugin_load_entry_point(self):
        plugin = _entry_point('openstack.cli.extension', 'snapphase').load()
        self.assertEqual('osc_snapphase.plugin', plugin.__name__)
        self.assertEqual('snapphase', plugin.API_NAME)
        self.assertEqual('os_snapphase_api_version',
                         plugin.API_VERSION_OPTION)
        self.assertEqual('1', plugin.DEFAULT_API_VERSION)
        self.assertIn(plugin.DEFAULT_API_VERSION, plugin.API_VERSIONS)

    def test_plugin_build_option_parser(self):
        plugin = _entry_point('openstack.cli.extension', 'snapphase').load()
        parser = argparse.ArgumentParser()
        self.assertIs(parser, plugin.build_option_parser(parser))
        # One global option, and none that does nothing (there is one
        # command set: no --os-snapphase-api-version).
        self.assertEqual(
            ['--os-snapphase-capture-model'],
            [s for action in parser._actions for s in action.option_strings
             if s.startswith('--os-')])
        self.assertEqual('xenserver', parser.parse_args(
            ['--os-snapphase-capture-model', 'xenserver']
        ).os_snapphase_capture_model)

    def test_plugin_commands_load_in_openstackclient(self):
        # OpenStackClient finds the command group openstack.snapphase.v1
        # from the module's constants alone, with no version option.
        from openstackclient import shell
        stdout = io.StringIO()
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith('OS_')}
        with mock.patch.dict(os.environ, environ, clear=True), \
                mock.patch('sys.stdout', stdout), \
                mock.patch('sys.stderr', io.StringIO()):
            code = shell.OpenStackShell().run(
                ['help', 'server', 'task-state', 'watch'])
        self.assertEqual(0, code)
        self.assertIn('server task-state watch', stdout.getvalue())
        self.assertIn('--until', stdout.getvalue())

    def test_plugin_imports_stdlib_only(self):
        baseline = _imported('pass')
        imported = _imported('import osc_snapphase.plugin') - baseline
        self.assertIn('osc_snapphase', imported)
        foreign = sorted(name for name in imported
                         if name not in sys.stdlib_module_names
                         and name != 'osc_snapphase')
        self.assertEqual([], foreign)
        self.assertEqual([], sorted(set(FORBIDDEN) & imported))

    def test_plugin_entry_points_load(self):
        config = configparser.ConfigParser()
        config.read(SETUP_CFG)
        groups = config['entry_points']
        self.assertIn('openstack.snapphase.v1', groups)
        count = 0
        for group, text in groups.items():
            installed = {ep.name: ep.value for ep in
                         importlib.metadata.entry_points(group=group)}
            for line in filter(None, text.splitlines()):
                name, value = (part.strip() for part in line.split('=', 1))
                self.assertEqual(value, installed.get(name),
                                 'entry point %s in %s' % (name, group))
                ep = importlib.metadata.EntryPoint(name, value, group)
                self.assertIsNotNone(ep.load())
                count += 1
        self.assertEqual(5, count)
