#!/usr/bin/env python3
"""Write the state machine definition of template.yaml as the JSON that
Step Functions receives, for asl-validator.

usage: definition.py TEMPLATE OUT.json [--broken]

The definition is inline (AWS::Serverless::StateMachine Definition). SAM
serializes it to JSON and CloudFormation replaces each ${Key} of
DefinitionSubstitutions in that text; here every substitution gets a
plausible value: an ARN of the right shape for an ARN, a parameter's Default
for !Ref PARAMETER. An unknown ${...} left over fails.

--broken writes a copy that must be refused (a state of an unknown type),
so that CI proves the validator can fail.
"""
import json
import re
import sys

import yaml

ACCOUNT = "111122223333"
REGION = "us-east-1"


class Tagged:
    """A CloudFormation short-form intrinsic (!Ref X, !GetAtt X.Y, ...)."""

    def __init__(self, tag, value):
        self.tag, self.value = tag, value


class Loader(yaml.SafeLoader):
    pass


def _construct(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tagged(tag_suffix, value)


Loader.add_multi_constructor("!", _construct)


def plausible(name, value, params):
    """The value CloudFormation would substitute, or a stand-in of its shape."""
    if isinstance(value, (str, int, float, bool)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, Tagged) and value.tag == "Ref":
        if value.value in params:
            return str(params[value.value].get("Default", ""))
        # !Ref of a resource: its name or ARN; the stand-in names it.
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{value.value}"
    if isinstance(value, Tagged) and value.tag == "GetAtt":
        target = value.value if isinstance(value.value, str) else ".".join(value.value)
        resource, _, attribute = target.partition(".")
        if attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{resource}"
    sys.exit(f"DefinitionSubstitutions {name}: no stand-in for {value!r}")


def main():
    args = [a for a in sys.argv[1:] if a != "--broken"]
    broken = "--broken" in sys.argv[1:]
    if len(args) != 2:
        sys.exit(__doc__)
    template_path, out_path = args
    with open(template_path) as f:
        template = yaml.load(f, Loader=Loader)
    params = template.get("Parameters", {})
    machines = [
        (rid, r)
        for rid, r in template["Resources"].items()
        if r.get("Type") == "AWS::Serverless::StateMachine"
    ]
    if len(machines) != 1:
        sys.exit(f"{template_path}: {len(machines)} AWS::Serverless::StateMachine resources, want 1")
    rid, machine = machines[0]
    props = machine["Properties"]
    definition = props.get("Definition")
    if not isinstance(definition, dict):
        sys.exit(f"{rid}: no inline Definition")

    def no_intrinsics(node, path):
        if isinstance(node, Tagged):
            sys.exit(f"{rid}: intrinsic !{node.tag} at {path}: use DefinitionSubstitutions")
        if isinstance(node, dict):
            for k, v in node.items():
                no_intrinsics(v, f"{path}.{k}")
        if isinstance(node, list):
            for i, v in enumerate(node):
                no_intrinsics(v, f"{path}[{i}]")

    no_intrinsics(definition, "Definition")
    if broken:
        definition["States"]["Done"]["Type"] = "Finish"

    text = json.dumps(definition, indent=2, sort_keys=True)
    subs = {
        k: plausible(k, v, params)
        for k, v in (props.get("DefinitionSubstitutions") or {}).items()
    }
    used = set()

    def substitute(m):
        key = m.group(1)
        if key not in subs:
            sys.exit(f"{rid}: ${{{key}}} has no DefinitionSubstitutions entry")
        used.add(key)
        return subs[key]

    text = re.sub(r"\$\{([^}]+)\}", substitute, text)
    unused = set(subs) - used
    if unused:
        sys.exit(f"{rid}: DefinitionSubstitutions {sorted(unused)} are not used")
    json.loads(text)
    with open(out_path, "w") as f:
        f.write(text + "\n")
    print(f"{rid}: definition written to {out_path} (substitutions: {', '.join(f'{k}={v}' for k, v in sorted(subs.items()))})")


if __name__ == "__main__":
    main()
