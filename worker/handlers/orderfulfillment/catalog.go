package orderfulfillment

// product is a catalog entry.
type product struct {
	name     string
	category string
}

// lookupProduct returns the catalog entry of sku.
func lookupProduct(sku string) (product, bool) {
	switch sku {
	case "WIDGET-001":
		return product{name: "Premium Widget A", category: "widgets"}, true
	case "WIDGET-002":
		return product{name: "Deluxe Widget B", category: "widgets"}, true
	case "GADGET-002":
		return product{name: "Standard Gadget C", category: "gadgets"}, true
	}
	return product{}, false
}

// stock is what a warehouse holds of one SKU.
type stock struct {
	available int64
	location  string
}

// lookupStock returns the stock of sku.
func lookupStock(sku string) (stock, bool) {
	switch sku {
	case "WIDGET-001":
		return stock{available: 100, location: "WH-EAST-A1"}, true
	case "WIDGET-002":
		return stock{available: 50, location: "WH-WEST-B2"}, true
	case "GADGET-002":
		return stock{available: 200, location: "WH-CENTRAL-C3"}, true
	}
	return stock{}, false
}

// carrier is the shipping service of one shipping method.
type carrier struct {
	name         string
	cost         Cents
	businessDays int
	// trackingPrefix starts the carrier's tracking numbers.
	trackingPrefix string
}

// lookupCarrier returns the carrier of a shipping method.
func lookupCarrier(method string) (carrier, bool) {
	switch method {
	case "standard":
		return carrier{name: "UPS Ground", cost: 899, businessDays: 5, trackingPrefix: "1Z"}, true
	case "express":
		return carrier{name: "FedEx Express", cost: 1500, businessDays: 2, trackingPrefix: "FX"}, true
	case "overnight":
		return carrier{name: "FedEx Overnight", cost: 2500, businessDays: 1, trackingPrefix: "FO"}, true
	}
	return carrier{}, false
}

// validPaymentMethod reports whether method is an accepted payment method.
func validPaymentMethod(method string) bool {
	switch method {
	case "credit_card", "debit_card", "paypal":
		return true
	}
	return false
}
