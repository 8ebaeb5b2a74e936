package market

// SamePlacement checks that an Index places and explains a job exactly as
// Place does, for the tests in package market_test.
var SamePlacement = samePlacement
