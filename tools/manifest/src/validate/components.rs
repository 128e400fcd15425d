//! Checking the components: names, sizes, grants (calls, kernel operations, notifications),
//! routes, restart policies and the call graph.

use super::*;

fn lookup<T: Copy>(table: &[(&'static str, T)], name: &str) -> Option<T> {
    table
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
}

pub(super) fn check_components(
    checker: &mut Checker<'_>,
    specs: &[ComponentSpec],
    names_seen: &mut Vec<(String, FieldPath)>,
) -> Option<Vec<Component>> {
    let errors_before = checker.diagnostics.len();
    let mut components = Vec::new();
    // Interface id -> (component index) of its server.
    let mut servers: Vec<(u16, usize)> = Vec::new();
    // Route bit -> component index.
    let mut route_owners: Vec<(u32, usize)> = Vec::new();
    let mut range_owners: Vec<(u32, u32, usize)> = Vec::new();

    for (index, spec) in specs.iter().enumerate() {
        let path = FieldPath::root().key("component").index(index);
        checker.name(&path.key("name"), &spec.name, names_seen);
        if spec.crate_name.trim().is_empty() {
            checker.error(
                &path.key("crate"),
                "name the cargo package that builds it, e.g. crate = \"hv-supervisor\"",
            );
        }

        let memory_text = spec.memory.as_deref().unwrap_or("1M");
        let memory = checker.size(&path.key("memory"), memory_text, PAGE);
        let stack_text = spec.stack.as_deref().unwrap_or("64K");
        let stack_field = path.key("stack");
        let stack = checker.size(&stack_field, stack_text, PAGE);
        if let (Some(memory), Some(stack)) = (memory, stack)
            && stack >= memory
        {
            checker.error(
                &stack_field,
                format!(
                    "the stack ({}) must be smaller than the component's memory ({}); \
                     shrink the stack or raise memory",
                    format_size(stack),
                    format_size(memory)
                ),
            );
        }

        let mut grants = Grants::default();
        if let Some(interface) = &spec.serves {
            let field = path.key("serves");
            match lookup(INTERFACES, interface) {
                Some(id) => {
                    if let Some(&(_, other)) = servers.iter().find(|(served, _)| *served == id) {
                        let line =
                            checker.line_of(&FieldPath::root().key("component").index(other));
                        checker.error(
                            &field,
                            format!(
                                "\"{interface}\" is already served by component \"{}\" (line \
                                 {line}); one component serves each interface",
                                specs[other].name
                            ),
                        );
                    } else {
                        servers.push((id, index));
                    }
                    grants.serves = id;
                }
                None => checker.error(
                    &field,
                    format!(
                        "\"{interface}\" is not an interface; known: {}{}",
                        names(INTERFACES),
                        suggestion(interface, INTERFACES.iter().map(|(n, _)| *n))
                    ),
                ),
            }
        }
        for (at, interface) in spec.calls.iter().enumerate() {
            let field = path.key("calls").index(at);
            match lookup(INTERFACES, interface) {
                Some(_) if spec.calls[..at].contains(interface) => {
                    checker.error(&field, format!("\"{interface}\" is listed twice"));
                }
                Some(id) => grants.may_call |= 1 << id,
                None => checker.error(
                    &field,
                    format!(
                        "\"{interface}\" is not an interface any component could serve; known: \
                         {}{}",
                        names(INTERFACES),
                        suggestion(interface, INTERFACES.iter().map(|(n, _)| *n))
                    ),
                ),
            }
        }
        for (at, op) in spec.kernel_ops.iter().enumerate() {
            let field = path.key("kernel-ops").index(at);
            match lookup(KERNEL_OPS, op) {
                Some(_) if spec.kernel_ops[..at].contains(op) => {
                    checker.error(&field, format!("\"{op}\" is listed twice"));
                }
                Some(number) => grants.kernel_ops |= 1 << number,
                None => checker.error(
                    &field,
                    format!(
                        "\"{op}\" is not a kernel operation; known: {}{}",
                        names(KERNEL_OPS),
                        suggestion(op, KERNEL_OPS.iter().map(|(n, _)| *n))
                    ),
                ),
            }
        }
        for (at, target) in spec.notifies.iter().enumerate() {
            let field = path.key("notifies").index(at);
            match specs.iter().position(|other| other.name == *target) {
                Some(_) if spec.notifies[..at].contains(target) => {
                    checker.error(&field, format!("\"{target}\" is listed twice"));
                }
                Some(id) if id == index => checker.error(
                    &field,
                    format!(
                        "a component does not notify itself; remove \"{target}\" from its own \
                         notifies"
                    ),
                ),
                // The boot table holds at most `hv_abi::MAX_COMPONENTS`, far below 32; the
                // composer refuses a manifest with more.
                Some(id) => grants.may_notify |= 1u32.checked_shl(id as u32).unwrap_or(0),
                None => checker.error(
                    &field,
                    format!(
                        "\"{target}\" is not a component; known: {}{}",
                        specs
                            .iter()
                            .map(|other| other.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        suggestion(target, specs.iter().map(|other| other.name.as_str()))
                    ),
                ),
            }
        }
        let mut range_slot = 0;
        for (at, route) in spec.routes.iter().enumerate() {
            let field = path.key("routes").index(at);
            if let Some(ids) = route.strip_prefix("smccc:") {
                match parse_function_range(ids) {
                    Err(message) => checker.error(&field, message),
                    Ok(range) => {
                        let taken = range_owners
                            .iter()
                            .find(|(first, last, _)| range.0 <= *last && *first <= range.1);
                        if let Some(&(_, _, other)) = taken {
                            let line =
                                checker.line_of(&FieldPath::root().key("component").index(other));
                            checker.error(
                                &field,
                                format!(
                                    "SMCCC functions {:#x}..={:#x} overlap a range routed to \
                                     component \"{}\" (line {line}); a function goes to one component",
                                    range.0, range.1, specs[other].name
                                ),
                            );
                        } else if range_slot == hv_abi::MAX_SMCCC_RANGES {
                            checker.error(
                                &field,
                                format!(
                                    "a component takes at most {} SMCCC ranges; merge some",
                                    hv_abi::MAX_SMCCC_RANGES
                                ),
                            );
                        } else {
                            range_owners.push((range.0, range.1, index));
                            grants.smccc_ranges[range_slot] = range;
                            range_slot += 1;
                        }
                    }
                }
                continue;
            }
            match lookup(ROUTES, route) {
                Some(_) if spec.routes[..at].contains(route) => {
                    checker.error(&field, format!("\"{route}\" is listed twice"));
                }
                Some(bit) => {
                    if let Some(&(_, other)) = route_owners.iter().find(|(b, _)| *b == bit) {
                        let line =
                            checker.line_of(&FieldPath::root().key("component").index(other));
                        checker.error(
                            &field,
                            format!(
                                "the \"{route}\" trap is already routed to component \"{}\" \
                                 (line {line}); a trap goes to one component, remove one route",
                                specs[other].name
                            ),
                        );
                    } else {
                        route_owners.push((bit, index));
                    }
                    grants.routes |= bit;
                }
                None => checker.error(
                    &field,
                    format!(
                        "\"{route}\" is not a trap that can be routed; known: {}{}",
                        names(ROUTES),
                        suggestion(route, ROUTES.iter().map(|(n, _)| *n))
                    ),
                ),
            }
        }

        let restart = check_restart(checker, &path.key("restart"), spec);
        let settings = match hv_component_config::Settings::parse(&spec.crate_name, &spec.settings)
        {
            Ok(settings) => settings,
            Err(message) => {
                checker.error(&path.key("settings"), message);
                hv_component_config::Settings::None
            }
        };

        components.push(Component {
            name: spec.name.clone(),
            crate_name: spec.crate_name.clone(),
            memory: memory.unwrap_or(0),
            stack: stack.unwrap_or(0),
            serves: spec.serves.clone(),
            calls: spec.calls.clone(),
            kernel_ops: spec.kernel_ops.clone(),
            notifies: spec.notifies.clone(),
            routes: spec.routes.clone(),
            grants,
            restart,
            settings,
        });
    }

    // Every call must reach a server.
    for (index, spec) in specs.iter().enumerate() {
        for (at, interface) in spec.calls.iter().enumerate() {
            if let Some(id) = lookup(INTERFACES, interface)
                && !servers.iter().any(|(served, _)| *served == id)
            {
                checker.error(
                    &FieldPath::root()
                        .key("component")
                        .index(index)
                        .key("calls")
                        .index(at),
                    format!(
                        "no component serves \"{interface}\"; add serves = \"{interface}\" to \
                         the component that should answer, or remove this call"
                    ),
                );
            }
        }
    }

    if checker.diagnostics.len() > errors_before {
        return None;
    }
    check_cycles(checker, specs, &components, &servers);
    (checker.diagnostics.len() == errors_before).then_some(components)
}

fn check_restart(checker: &mut Checker<'_>, path: &FieldPath, spec: &ComponentSpec) -> Restart {
    let restart = &spec.restart;
    let mut duration = |key: &str, text: &Option<String>, default: Duration| match text {
        Some(text) => match parse_duration(text) {
            Ok(duration) => duration,
            Err(message) => {
                checker.error(&path.key(key), message);
                default
            }
        },
        None => default,
    };
    let min_delay = duration("min-delay", &restart.min_delay, Duration::from_millis(10));
    let max_delay = duration("max-delay", &restart.max_delay, Duration::from_secs(5));
    match restart.policy {
        RestartPolicyKind::Backoff => {
            if min_delay > max_delay {
                checker.error(
                    &path.key("max-delay"),
                    format!(
                        "max-delay ({max_delay:?}) is shorter than min-delay ({min_delay:?}); \
                         make it at least min-delay"
                    ),
                );
            }
            Restart::Backoff {
                min_delay,
                max_delay,
            }
        }
        RestartPolicyKind::Never => {
            for (key, value) in [
                ("min-delay", &restart.min_delay),
                ("max-delay", &restart.max_delay),
            ] {
                if value.is_some() {
                    checker.error(
                        &path.key(key),
                        format!(
                            "{key} has no effect with policy = \"never\"; remove it or use \
                             policy = \"backoff\""
                        ),
                    );
                }
            }
            Restart::Never
        }
    }
}

/// Refuses call cycles: a cycle could leave two CPUs each waiting for the other's component.
fn check_cycles(
    checker: &mut Checker<'_>,
    specs: &[ComponentSpec],
    components: &[Component],
    servers: &[(u16, usize)],
) {
    // Edge a -> b, labelled by a's call index, when a calls what b serves.
    let edges = |a: usize| -> Vec<(usize, usize)> {
        specs[a]
            .calls
            .iter()
            .enumerate()
            .filter_map(|(at, interface)| {
                let id = lookup(INTERFACES, interface)?;
                let (_, b) = servers.iter().find(|(served, _)| *served == id)?;
                Some((at, *b))
            })
            .collect()
    };
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    // Iterative depth-first search keeping the stack of (node, call index) to name the cycle.
    let mut marks = vec![Mark::New; components.len()];
    for start in 0..components.len() {
        if marks[start] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, Vec<(usize, usize)>)> = vec![(start, edges(start))];
        marks[start] = Mark::OnStack;
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            let Some((at, next)) = pending.pop() else {
                marks[node] = Mark::Done;
                stack.pop();
                continue;
            };
            match marks[next] {
                Mark::Done => {}
                Mark::New => {
                    marks[next] = Mark::OnStack;
                    stack.push((next, edges(next)));
                }
                Mark::OnStack => {
                    let from = stack
                        .iter()
                        .position(|(n, _)| *n == next)
                        .expect("on the stack");
                    let mut cycle: Vec<&str> = stack[from..]
                        .iter()
                        .map(|(n, _)| specs[*n].name.as_str())
                        .collect();
                    cycle.push(&specs[next].name);
                    checker.error(
                        &FieldPath::root()
                            .key("component")
                            .index(node)
                            .key("calls")
                            .index(at),
                        format!(
                            "the components' calls form a cycle ({}); calls must only go one \
                             way, remove one of them",
                            cycle.join(" -> ")
                        ),
                    );
                    return;
                }
            }
        }
    }
}

/// Parses `0xC6000005` or `0xC6000005-0xC6000008` (hex, inclusive) into a function-ID range.
fn parse_function_range(text: &str) -> Result<(u32, u32), String> {
    let parse = |id: &str| {
        let digits = id
            .trim()
            .strip_prefix("0x")
            .or_else(|| id.trim().strip_prefix("0X"));
        digits.and_then(|digits| u32::from_str_radix(digits, 16).ok())
    };
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (parse(first), parse(last)),
        None => (parse(text), parse(text)),
    };
    match (first, last) {
        (Some(first), Some(last)) if first <= last && first != 0 => Ok((first, last)),
        _ => Err(format!(
            "\"smccc:{text}\" is not an SMCCC function range; write hex function IDs, e.g. \
             \"smccc:0xC6000005-0xC6000008\" or \"smccc:0xC6000002\""
        )),
    }
}
