package floor

// Every text a person reads from the floor, in one table, so that a
// translation has one place to change. Those with verbs are fmt formats;
// names reach them HTML-escaped, since clients show messages as HTML.
const (
	// To the one who gets the floor.
	textHolding        = "You have the floor."
	textHoldingMinutes = "You have the floor. Your turn is noted for the minutes."

	// To a member in the queue.
	textPlace = "You are number %d in the queue."
	// A hand raised at the same moment on another node of a cluster came
	// first.
	textPlaceLater = "You are now number %d in the queue: someone else's hand was raised first."
	textLeftQueue  = "You left the queue."

	// To the one whose turn ends, or is running out.
	textTurnEnded   = "Your turn has ended."
	textTimeOver    = "Your speaking time is over."
	textTimeWarning = "%d seconds of speaking time left."
	textExtended    = "Your speaking time was extended by %v."

	// To the one holding the floor when a reload changes the speaking
	// time: the new limit, and what is left of the turn under it.
	textTimeChanged       = "The speaking time is now %v: %v of your turn left."
	textTimeChangedPassed = "The speaking time is now %v, which your turn has already passed: %v left to finish."
	textTimeLifted        = "The speaking time was lifted: your turn is no longer timed."

	// To a chair (a client or the admin API), answering an action.
	textNobodyWaiting = "Nobody is waiting for the floor."
	textNoTimedTurn   = "There is no timed turn to extend."
	textNotADuration  = "%q is not a duration such as 2m or 30s."
	textNotInHall     = "Nobody called %q is in %s."
	textHelp          = "Floor commands: !hand, !hand withdraw, !queue; for chairs !next, !give NAME, !revoke, !clear, !extend [DURATION], !muteall, !unmuteall."

	// The summary chairs are told and everyone sees below the hall's
	// description: "Floor: alice. Queue: 1. bob, 2. carol."
	textAllMuted   = "Everyone is muted but the floor, the chairs and priority speakers."
	textHolder     = "Floor: %s."
	textNoHolder   = "Floor: nobody."
	textQueue      = "Queue: %s."
	textQueueEntry = "%d. %s"
	textQueueEmpty = "Queue: empty."

	// Below the description of a hall that keeps minutes, so that nobody
	// takes the floor without knowing.
	textMinutesNotice = "Turns on the floor are noted for the minutes: who spoke, when and for how long."
)
