//! The ack-retry abstraction on real cores driven by hand: after each step the
//! abstract state of the implementation equals the state the model reaches by
//! the corresponding step, computed by the model's own code.

use eo_conformance::abstraction::ack_retry::{
    self as abs, msg_id_of, transfer_of, Ghost, Layout, Nonces, ReceiverGhost,
};
use eo_conformance::abstraction::{AbstractionError, Diff};
use eo_impl::ack_retry::{Msg, Receiver, ReceiverRecord, Sender, SenderRecord};
use eo_impl::bank::Transfer;
use eo_impl::core::{Core, NodeId, Ready, Time};
use eo_impl::release::MemLog;
use eo_models::ack_retry::{self as model, AckRetry, AckRetryCfg, MsgId, NodeState, NodeStorage};
use eo_models::system::{in_flight, Step, SystemState};
use stateright::actor::{ActorModelAction, Id};
use stateright::Model;

/// One sender and the receiver, implementation and model side by side.
struct Pair {
    layout: Layout,
    model: AckRetry,
    state: SystemState<model::Node>,
    sender: Sender,
    receiver: Receiver,
    slog: MemLog<SenderRecord>,
    rlog: MemLog<ReceiverRecord>,
    /// The implementation's messages in flight: (from, to, message).
    flight: Vec<(NodeId, NodeId, Msg)>,
    now: Time,
}

const GHOST: Ghost = Ghost {
    first: 1,
    losses: 0,
};

impl Pair {
    fn new() -> Pair {
        let layout = Layout::new(1);
        let model = AckRetryCfg::default().into_model();
        let state = model.init_states().pop().unwrap();
        let (senders, receiver) = layout.install();
        let mut slog = MemLog::new();
        let mut rlog = MemLog::new();
        for r in &senders[0] {
            use eo_impl::release::Log;
            let _ = slog.append(r);
        }
        for r in &receiver {
            use eo_impl::release::Log;
            let _ = rlog.append(r);
        }
        slog.sync();
        rlog.sync();
        let now = Time::ZERO;
        let sender = Sender::recover(0, 1, now, 7, senders[0].clone()).unwrap();
        let receiver = Receiver::recover(1, now, receiver).unwrap();
        Pair {
            layout,
            model,
            state,
            sender,
            receiver,
            slog,
            rlog,
            flight: Vec::new(),
            now,
        }
    }

    fn model_step(&mut self, action: ActorModelAction<model::Msg, model::Timer, ()>) {
        self.state = self
            .model
            .next_state(&self.state, Step::Actor(action))
            .expect("the model takes the step");
    }

    fn carry_out<R: Clone, E: std::fmt::Debug>(
        ready: Ready<R, Msg, E>,
        log: &mut MemLog<R>,
        from: NodeId,
        flight: &mut Vec<(NodeId, NodeId, Msg)>,
    ) {
        let release = ready.persist(log).unwrap();
        let proof = log.sync();
        let released = release.open(proof).unwrap();
        for m in released.messages {
            flight.push((from, m.to, m.msg));
        }
    }

    fn poll(&mut self) {
        let ready = self.sender.poll_ready();
        Pair::carry_out(ready, &mut self.slog, 0, &mut self.flight);
        let ready = self.receiver.poll_ready();
        Pair::carry_out(ready, &mut self.rlog, 1, &mut self.flight);
    }

    fn submit(&mut self, msg: u8) {
        let id = MsgId { sender: 0, msg };
        self.sender.submit(self.now, transfer_of(id)).unwrap();
        self.poll();
        self.model_step(ActorModelAction::Timeout(Id::from(0), model::Timer::Submit));
    }

    /// Delivers the implementation's message at `index` of the flight and the
    /// model's message it abstracts to.
    fn deliver(&mut self, index: usize) {
        let (from, to, m) = self.flight.remove(index);
        let abstracted = abs::msg(self.layout, &Nonces::default(), from, to, &m).unwrap();
        if to == 1 {
            self.receiver.handle_message(self.now, from, m).unwrap();
        } else {
            self.sender.handle_message(self.now, from, m).unwrap();
        }
        self.poll();
        self.model_step(ActorModelAction::Deliver {
            src: Id::from(from as usize),
            dst: Id::from(to as usize),
            msg: abstracted,
        });
    }

    fn crash_receiver(&mut self) {
        self.rlog.crash();
        self.receiver = Receiver::recover(1, self.now, self.rlog.records().to_vec()).unwrap();
        self.poll();
        self.model_step(ActorModelAction::Crash(Id::from(1)));
        self.model_step(ActorModelAction::Recover(Id::from(1)));
    }

    fn crash_sender(&mut self) {
        self.slog.crash();
        self.sender = Sender::recover(0, 1, self.now, 8, self.slog.records().to_vec()).unwrap();
        self.poll();
        self.model_step(ActorModelAction::Crash(Id::from(0)));
        self.model_step(ActorModelAction::Recover(Id::from(0)));
    }

    /// The abstraction of the implementation, as the model's actor states and
    /// storages and messages in flight.
    fn abstract_parts(&self) -> (Vec<NodeState>, Vec<Option<NodeStorage>>, Vec<String>) {
        let rghost = ReceiverGhost::installed(self.layout);
        let states = vec![
            NodeState::Sender(abs::sender_state(self.layout, 0, &self.sender, GHOST).unwrap()),
            NodeState::Receiver(abs::receiver_state(self.layout, &self.receiver, &rghost).unwrap()),
        ];
        let storages = vec![
            abs::sender_storage(self.layout, 0, self.slog.records(), GHOST)
                .unwrap()
                .map(NodeStorage::Sender),
            abs::receiver_storage(self.layout, self.rlog.records(), &rghost)
                .unwrap()
                .map(NodeStorage::Receiver),
        ];
        let mut flight: Vec<String> = self
            .flight
            .iter()
            .map(|(f, t, m)| {
                let m = abs::msg(self.layout, &Nonces::default(), *f, *t, m).unwrap();
                format!("{f}→{t} {m:?}")
            })
            .collect();
        // The model absorbs a copy of an envelope already in flight
        // (copies_max 1): so does the comparison.
        flight.sort();
        flight.dedup();
        (states, storages, flight)
    }

    fn model_parts(&self) -> (Vec<NodeState>, Vec<Option<NodeStorage>>, Vec<String>) {
        let states = self
            .state
            .actor_states
            .iter()
            .map(|s| (**s).clone())
            .collect();
        let mut flight: Vec<String> = in_flight(&self.state.network)
            .map(|(s, d, m)| format!("{}→{} {m:?}", usize::from(s), usize::from(d)))
            .collect();
        flight.sort();
        (states, self.state.actor_storages.clone(), flight)
    }

    fn assert_agree(&self, after: &str) {
        let (a_states, a_storages, a_flight) = self.abstract_parts();
        let (m_states, m_storages, m_flight) = self.model_parts();
        let mut diff = Diff::default();
        for i in 0..2 {
            diff.nest(&format!("actor {i}"), &m_states[i], &a_states[i]);
            diff.nest(
                &format!("actor {i} storage"),
                &m_storages[i],
                &a_storages[i],
            );
        }
        diff.check("in flight".into(), &m_flight, &a_flight);
        assert!(diff.is_empty(), "after {after}:\n{diff}");
        assert_eq!(a_states, m_states, "after {after}");
        assert_eq!(a_storages, m_storages, "after {after}");
    }

    fn find(&self, pred: impl Fn(&Msg) -> bool) -> usize {
        self.flight.iter().position(|(_, _, m)| pred(m)).unwrap()
    }
}

#[test]
fn installed_cores_are_the_models_initial_state() {
    Pair::new().assert_agree("installation");
}

#[test]
fn submit_deliver_ack_crash_and_recover_agree_with_the_model_step_by_step() {
    let mut p = Pair::new();
    p.submit(1);
    p.assert_agree("submit 1");
    p.submit(2);
    p.assert_agree("submit 2");
    // Data(2) overtakes Data(1): the receiver applies above its high-water mark.
    let d2 = p.find(|m| matches!(m, Msg::Data { seq: 2, .. }));
    p.deliver(d2);
    p.assert_agree("deliver Data(2)");
    let d1 = p.find(|m| matches!(m, Msg::Data { seq: 1, .. }));
    p.deliver(d1);
    p.assert_agree("deliver Data(1)");
    p.crash_receiver();
    p.assert_agree("receiver crash and recovery");
    let ack = p.find(|m| matches!(m, Msg::Ack { seq: 1, .. }));
    p.deliver(ack);
    p.assert_agree("deliver Ack(1, hwm 2)");
    p.submit(3);
    p.assert_agree("submit 3");
    p.crash_sender();
    p.assert_agree("sender crash and recovery (retransmits Data(3))");
    // Two copies of Data(3) in flight in the implementation; the model absorbs
    // the second (copies_max 1). Deliver one, lose the other.
    let d3 = p.find(|m| matches!(m, Msg::Data { seq: 3, .. }));
    p.flight.remove(d3);
    let d3 = p.find(|m| matches!(m, Msg::Data { seq: 3, .. }));
    p.deliver(d3);
    p.assert_agree("deliver Data(3)");
}

#[test]
fn a_redelivered_message_is_acknowledged_again_not_applied_again() {
    let mut p = Pair::new();
    p.submit(1);
    let data = p.flight[0];
    p.deliver(0);
    p.assert_agree("first delivery");
    // The model's network consumed its copy; the sender's retransmission puts
    // another one in (a Retry timer firing), then it is delivered.
    p.flight.push(data);
    p.model_step(ActorModelAction::Timeout(Id::from(0), model::Timer::Retry));
    p.assert_agree("retransmission");
    let again = p.find(|m| matches!(m, Msg::Data { .. }));
    p.deliver(again);
    p.assert_agree("redelivery");
    let ledger = abs::ledger(p.receiver.bank()).unwrap();
    assert_eq!(ledger, vec![MsgId { sender: 0, msg: 1 }]);
}

#[test]
fn a_state_the_model_did_not_reach_shows_as_a_field_diff() {
    let mut p = Pair::new();
    p.submit(1);
    // The implementation applies; the model does not take the step.
    let (from, to, m) = p.flight.remove(0);
    p.receiver.handle_message(p.now, from, m).unwrap();
    p.poll();
    let (a, _, _) = p.abstract_parts();
    let (e, _, _) = p.model_parts();
    let diff = Diff::between(&e[1], &a[1]);
    let fields: Vec<&str> = diff.0.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, ["ledger", "senders[0]"], "{diff}");
    assert_eq!(diff.0[0].expected, "[]");
    assert_eq!(diff.0[0].actual, "[s0#1]");
    let _ = to;
}

#[test]
fn beyond_the_models_bounds_is_a_typed_error() {
    let layout = Layout::new(1);
    let t = transfer_of(MsgId { sender: 0, msg: 1 });
    let data = |seq| Msg::Data {
        incarnation: 1,
        seq,
        transfer: t,
    };
    assert!(abs::msg(layout, &Nonces::default(), 0, 1, &data(7)).is_ok());
    assert_eq!(
        abs::msg(layout, &Nonces::default(), 0, 1, &data(8)),
        Err(AbstractionError::BeyondBound {
            what: "data seq",
            value: 8,
            max: 7
        })
    );
    assert!(matches!(
        abs::msg(layout, &Nonces::default(), 3, 1, &data(1)),
        Err(AbstractionError::UnknownNode { node: 3, .. })
    ));
    let foreign = Transfer {
        from: 5,
        to: 6,
        amount: 10,
    };
    assert!(matches!(
        msg_id_of(&foreign),
        Err(AbstractionError::ForeignPayload { .. })
    ));
    assert!(matches!(
        abs::msg(
            layout,
            &Nonces::default(),
            0,
            1,
            &Msg::NewIncarnation { nonce: 9 }
        ),
        Err(AbstractionError::UnknownNonce { nonce: 9, .. })
    ));
    // Incarnation 1 is sender 0's installed one (the model's 0); 2 would be
    // the model's 1; 0 is nobody's.
    assert_eq!(layout.model_inc(0, 1), Ok(0));
    assert_eq!(layout.model_inc(0, 2), Ok(1));
    assert!(layout.model_inc(0, 0).is_err());
    assert_eq!(layout.impl_incarnation(0, 1), 2);
    // A sender that has used seqs beyond the model's capacity.
    let mut sender = Sender::recover(0, 1, Time::ZERO, 1, layout.install().0[0].clone()).unwrap();
    for msg in 1..=9 {
        let _ = sender.submit(Time::ZERO, transfer_of(MsgId { sender: 0, msg }));
    }
    assert!(matches!(
        abs::sender_state(layout, 0, &sender, GHOST),
        Err(AbstractionError::BeyondBound { .. })
    ));
    // A log that no sender wrote.
    let bad = vec![SenderRecord::Submitted {
        seq: 1,
        transfer: t,
    }];
    assert!(matches!(
        abs::sender_storage(layout, 0, &bad, GHOST),
        Err(AbstractionError::Recover(_))
    ));
}
