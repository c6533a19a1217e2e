"""What the trainer and the evaluator share as stream readers: the Kafka source of the
`minibatches` topic and the stop flag that signals set."""
