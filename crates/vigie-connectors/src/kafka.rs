//! Kafka topics of JSON events, through librdkafka (`rdkafka`): a consumer in
//! a consumer group whose offsets Vigie commits only after the events are
//! stored, and a producer for tests and the example generator.
//!
//! The store, not the broker, is the authority on what was read: the caller
//! passes the next offset of each partition it has stored, and messages
//! before it (a redelivery after a crash between storing and committing)
//! are skipped, so a replayed event never counts twice. The committed
//! offsets show the group's progress to Kafka's own tools.
//!
//! librdkafka reconnects by itself: a broker that goes away shows as polls
//! that return nothing (and transport errors, reported, not fatal) until it
//! is back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value as Json;

use crate::error::ConnectorError;

/// How long a metadata request or a flush may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`KafkaReader::poll`] waits for more messages once the first one came.
pub const FILL: Duration = Duration::from_millis(20);

fn failed(brokers: &str, what: &str, error: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Kafka { brokers: brokers.to_owned(), message: format!("{what}: {error}") }
}

/// One message read: its partition, offset, and payload as JSON (or why it is not).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The partition.
    pub partition: i32,
    /// The message's offset in its partition.
    pub offset: i64,
    /// The payload parsed as JSON, or why it cannot be.
    pub event: Result<Json, String>,
}

/// A consumer of one topic in a consumer group.
pub struct KafkaReader {
    brokers: String,
    topic: String,
    consumer: BaseConsumer,
    /// The next offset to deliver, per partition (what the caller has stored).
    next: BTreeMap<i32, i64>,
}

impl KafkaReader {
    /// Joins `group` on `topic` at `brokers`; `stored` is the next offset of each partition
    /// already stored (messages before it are skipped).
    pub fn open(
        brokers: &str,
        topic: &str,
        group: &str,
        stored: BTreeMap<i32, i64>,
    ) -> Result<Self, ConnectorError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("enable.partition.eof", "false")
            // Once its local queue holds `queued.min.messages` (100,000), librdkafka pauses
            // fetching for this long (by default a whole second): a reader slower than the
            // fetches, as the stream processor is, would find the queue empty for most of
            // that second. Paused 20 ms instead, the queue refills before it runs dry.
            .set("fetch.queue.backoff.ms", "20")
            .create()
            .map_err(|e| failed(brokers, "cannot create a consumer", e))?;
        consumer.subscribe(&[topic]).map_err(|e| failed(brokers, "cannot subscribe", e))?;
        Ok(KafkaReader {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            consumer,
            next: stored,
        })
    }

    /// Up to `max` new messages, waiting at most `wait` for the first one, then at most
    /// [`FILL`] more for the rest while messages keep coming: librdkafka hands over what
    /// its fetches brought so far, and a batch cut at the first empty moment would be a
    /// fraction of one. A transport error (the broker away) ends the batch early;
    /// librdkafka keeps reconnecting.
    pub fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Received>, ConnectorError> {
        let mut out = Vec::new();
        let mut timeout = wait;
        let mut fill_until = None;
        while out.len() < max {
            let Some(message) = self.consumer.poll(timeout) else { break };
            let until = *fill_until.get_or_insert_with(|| Instant::now() + FILL);
            timeout = until.saturating_duration_since(Instant::now());
            let message = match message {
                Ok(message) => message,
                Err(KafkaError::MessageConsumption(code)) if transient(code) => break,
                Err(KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    return Err(failed(
                        &self.brokers,
                        &format!("topic {:?}", self.topic),
                        "no such topic",
                    ));
                }
                Err(error) => return Err(failed(&self.brokers, "reading", error)),
            };
            let (partition, offset) = (message.partition(), message.offset());
            if self.next.get(&partition).is_some_and(|&next| offset < next) {
                continue;
            }
            let event = match message.payload() {
                None => Err("an empty message".to_owned()),
                Some(bytes) => serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}")),
            };
            self.next.insert(partition, offset + 1);
            out.push(Received { partition, offset, event });
        }
        Ok(out)
    }

    /// Whether every message the topic held when asked has been delivered: the next offset
    /// of every partition is at its high watermark.
    pub fn caught_up(&self) -> Result<bool, ConnectorError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), TIMEOUT)
            .map_err(|e| failed(&self.brokers, "reading the topic's metadata", e))?;
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == self.topic) else {
            return Ok(false);
        };
        for partition in topic.partitions() {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, partition.id(), TIMEOUT)
                .map_err(|e| failed(&self.brokers, "reading the partition's offsets", e))?;
            let next = self.next.get(&partition.id()).copied().unwrap_or(low);
            if next < high {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next offset of each partition after what was delivered.
    pub fn positions(&self) -> &BTreeMap<i32, i64> {
        &self.next
    }

    /// Rewinds to `stored` (what the caller has stored), after a failed store.
    pub fn rewind(&mut self, stored: BTreeMap<i32, i64>) -> Result<(), ConnectorError> {
        for (&partition, &offset) in &stored {
            if self.next.get(&partition) != Some(&offset) {
                self.consumer
                    .seek(&self.topic, partition, Offset::Offset(offset), TIMEOUT)
                    .map_err(|e| failed(&self.brokers, "rewinding", e))?;
            }
        }
        self.next = stored;
        Ok(())
    }

    /// Commits `offsets` (next offset per partition) to the group; a failure is returned
    /// for the caller to report, the stored offsets staying the authority.
    pub fn commit(&self, offsets: &BTreeMap<i32, i64>) -> Result<(), ConnectorError> {
        let mut list = TopicPartitionList::new();
        for (&partition, &offset) in offsets {
            list.add_partition_offset(&self.topic, partition, Offset::Offset(offset))
                .map_err(|e| failed(&self.brokers, "committing", e))?;
        }
        if list.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&list, CommitMode::Sync)
            .map_err(|e| failed(&self.brokers, "committing", e))
    }
}

/// Errors that pass once the broker is back.
fn transient(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::CoordinatorLoadInProgress
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotLeaderForPartition
    )
}

/// Creates `topic` with `partitions` partitions (nothing when it exists).
pub fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<(), ConnectorError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| failed(brokers, "cannot create an admin client", e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(brokers, "cannot start a runtime", e))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = runtime
        .block_on(admin.create_topics([&new], &options))
        .map_err(|e| failed(brokers, &format!("creating topic {topic:?}"), e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(failed(brokers, &format!("creating topic {name:?}"), code));
            }
        }
    }
    Ok(())
}

/// Sends `events` to `topic`, each keyed by `key(event)` when given, and waits until the
/// broker has every one.
pub fn produce(
    brokers: &str,
    topic: &str,
    events: &[Json],
    key: Option<&str>,
) -> Result<(), ConnectorError> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create()
        .map_err(|e| failed(brokers, "cannot create a producer", e))?;
    for event in events {
        let payload = event.to_string();
        let key_text = key.and_then(|k| event.get(k)).map(|v| match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        });
        let mut record = BaseRecord::<String, String>::to(topic).payload(&payload);
        if let Some(k) = &key_text {
            record = record.key(k);
        }
        let mut pending = record;
        loop {
            match producer.send(pending) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    producer.poll(Duration::from_millis(50));
                    pending = back;
                }
                Err((error, _)) => return Err(failed(brokers, "producing", error)),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(TIMEOUT).map_err(|e| failed(brokers, "flushing", e))
}
