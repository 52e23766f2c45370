-- The event catalog (SPEC section 4): every event type with its example `data` payload.
INSERT INTO event_types (code, category, label, description, example_payload, position) VALUES
('booking.created', 'Bookings', 'Booking Created',
 'Triggered when a new booking is submitted: online, through a channel, walk-up or by the call center. Sends booking details, booking status and customer information.',
 $json${
  "id": "bkg_8F3K2Q",
  "reference": "TC-2026-004512",
  "status": "confirmed",
  "channel": "online",
  "product": {
    "id": "prd_CITYWALK",
    "name": "Old Town Walking Tour"
  },
  "start_time": "2026-12-05T09:30:00Z",
  "created_at": "2026-11-22T10:00:00Z",
  "customer": {
    "id": "cus_4T7M2P",
    "first_name": "Sofia",
    "last_name": "Lindqvist",
    "email": "sofia.lindqvist@example.com",
    "phone": "+46 70 123 45 67",
    "language": "sv"
  },
  "pricing": {
    "currency": "EUR",
    "subtotal": 9000,
    "tax": 1800,
    "total": 10800
  },
  "units": [
    {
      "type": "adult",
      "quantity": 2,
      "unit_price": 3500
    },
    {
      "type": "child",
      "quantity": 1,
      "unit_price": 2000
    }
  ],
  "payment": {
    "status": "completed",
    "method": "card",
    "amount": 10800,
    "currency": "EUR"
  },
  "questions": [
    {
      "question": "Dietary requirements?",
      "answer": "Vegetarian"
    },
    {
      "question": "Hotel for pick-up",
      "answer": "Hotel Continental"
    }
  ],
  "localized": {
    "de": {
      "product_name": "Altstadt-Rundgang"
    },
    "fr": {
      "product_name": "Visite guidée de la vieille ville"
    }
  }
}$json$::jsonb, 1),
('booking.updated', 'Bookings', 'Booking Updated',
 'Triggered when an existing booking is changed (date, participants, details). Sends the updated booking data.',
 $json${
  "id": "bkg_8F3K2Q",
  "reference": "TC-2026-004512",
  "status": "confirmed",
  "channel": "online",
  "product": {
    "id": "prd_CITYWALK",
    "name": "Old Town Walking Tour"
  },
  "start_time": "2026-12-05T09:30:00Z",
  "created_at": "2026-11-22T10:00:00Z",
  "customer": {
    "id": "cus_4T7M2P",
    "first_name": "Sofia",
    "last_name": "Lindqvist",
    "email": "sofia.lindqvist@example.com",
    "phone": "+46 70 123 45 67",
    "language": "sv"
  },
  "pricing": {
    "currency": "EUR",
    "subtotal": 9000,
    "tax": 1800,
    "total": 10800
  },
  "units": [
    {
      "type": "adult",
      "quantity": 2,
      "unit_price": 3500
    },
    {
      "type": "child",
      "quantity": 1,
      "unit_price": 2000
    }
  ],
  "payment": {
    "status": "completed",
    "method": "card",
    "amount": 10800,
    "currency": "EUR"
  },
  "questions": [
    {
      "question": "Dietary requirements?",
      "answer": "Vegetarian"
    },
    {
      "question": "Hotel for pick-up",
      "answer": "Hotel Continental"
    }
  ],
  "changes": {
    "start_time": {
      "from": "2026-12-04T09:30:00Z",
      "to": "2026-12-05T09:30:00Z"
    }
  },
  "updated_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 2),
('booking.cancelled', 'Bookings', 'Booking Cancelled',
 'Triggered when a booking is cancelled by your staff, the call center or an OTA. Sends the booking data with the cancellation.',
 $json${
  "id": "bkg_8F3K2Q",
  "reference": "TC-2026-004512",
  "status": "cancelled",
  "channel": "online",
  "product": {
    "id": "prd_CITYWALK",
    "name": "Old Town Walking Tour"
  },
  "start_time": "2026-12-05T09:30:00Z",
  "created_at": "2026-11-22T10:00:00Z",
  "customer": {
    "id": "cus_4T7M2P",
    "first_name": "Sofia",
    "last_name": "Lindqvist",
    "email": "sofia.lindqvist@example.com",
    "phone": "+46 70 123 45 67",
    "language": "sv"
  },
  "pricing": {
    "currency": "EUR",
    "subtotal": 9000,
    "tax": 1800,
    "total": 10800
  },
  "units": [
    {
      "type": "adult",
      "quantity": 2,
      "unit_price": 3500
    },
    {
      "type": "child",
      "quantity": 1,
      "unit_price": 2000
    }
  ],
  "payment": {
    "status": "completed",
    "method": "card",
    "amount": 10800,
    "currency": "EUR"
  },
  "questions": [
    {
      "question": "Dietary requirements?",
      "answer": "Vegetarian"
    },
    {
      "question": "Hotel for pick-up",
      "answer": "Hotel Continental"
    }
  ],
  "cancellation": {
    "cancelled_at": "2026-11-22T10:00:00Z",
    "reason": "Customer request",
    "by": "call_center",
    "refund_amount": 10800
  }
}$json$::jsonb, 3),
('order.updated', 'Orders', 'Order Updated',
 'Triggered when an existing order is confirmed, updated or cancelled. Sends the order with its bookings.',
 $json${
  "id": "ord_51XK9",
  "status": "confirmed",
  "bookings": [
    "bkg_8F3K2Q"
  ],
  "updated_at": "2026-11-22T10:00:00Z",
  "customer": {
    "id": "cus_4T7M2P",
    "first_name": "Sofia",
    "last_name": "Lindqvist",
    "email": "sofia.lindqvist@example.com",
    "phone": "+46 70 123 45 67",
    "language": "sv"
  },
  "pricing": {
    "currency": "EUR",
    "subtotal": 9000,
    "tax": 1800,
    "total": 10800
  },
  "units": [
    {
      "type": "adult",
      "quantity": 2,
      "unit_price": 3500
    },
    {
      "type": "child",
      "quantity": 1,
      "unit_price": 2000
    }
  ],
  "payment": {
    "status": "completed",
    "method": "card",
    "amount": 10800,
    "currency": "EUR"
  },
  "questions": [
    {
      "question": "Dietary requirements?",
      "answer": "Vegetarian"
    },
    {
      "question": "Hotel for pick-up",
      "answer": "Hotel Continental"
    }
  ]
}$json$::jsonb, 4),
('payment.created', 'Payments', 'Payment Created',
 'Triggered when a payment record is created, with its payment status (for example: pending).',
 $json${
  "id": "pay_7QW3",
  "booking_id": "bkg_8F3K2Q",
  "amount": 10800,
  "currency": "EUR",
  "status": "pending",
  "method": "card",
  "created_at": "2026-11-22T10:00:00Z",
  "customer": {
    "id": "cus_4T7M2P",
    "first_name": "Sofia",
    "last_name": "Lindqvist",
    "email": "sofia.lindqvist@example.com",
    "phone": "+46 70 123 45 67",
    "language": "sv"
  }
}$json$::jsonb, 5),
('payment.completed', 'Payments', 'Payment Completed',
 'Triggered when the full payment is completed and the transaction is finalized, with its payment status (for example: completed).',
 $json${
  "id": "pay_7QW3",
  "booking_id": "bkg_8F3K2Q",
  "amount": 10800,
  "currency": "EUR",
  "status": "completed",
  "method": "card",
  "completed_at": "2026-11-22T10:00:00Z",
  "customer": {
    "id": "cus_4T7M2P",
    "first_name": "Sofia",
    "last_name": "Lindqvist",
    "email": "sofia.lindqvist@example.com",
    "phone": "+46 70 123 45 67",
    "language": "sv"
  }
}$json$::jsonb, 6),
('form.submitted', 'Forms', 'Form Submitted',
 'Triggered when a new form is submitted. Sends booking details and customer information.',
 $json${
  "id": "frm_sub_3321",
  "form": {
    "id": "frm_waiver",
    "name": "Safety waiver"
  },
  "booking_id": "bkg_8F3K2Q",
  "submitted_at": "2026-11-22T10:00:00Z",
  "customer": {
    "id": "cus_4T7M2P",
    "first_name": "Sofia",
    "last_name": "Lindqvist",
    "email": "sofia.lindqvist@example.com",
    "phone": "+46 70 123 45 67",
    "language": "sv"
  },
  "questions": [
    {
      "question": "I accept the safety rules",
      "answer": "yes"
    }
  ],
  "pricing": {
    "currency": "EUR",
    "subtotal": 9000,
    "tax": 1800,
    "total": 10800
  },
  "units": [
    {
      "type": "adult",
      "quantity": 2,
      "unit_price": 3500
    },
    {
      "type": "child",
      "quantity": 1,
      "unit_price": 2000
    }
  ],
  "payment": {
    "status": "completed",
    "method": "card",
    "amount": 10800,
    "currency": "EUR"
  }
}$json$::jsonb, 7),
('customer.created', 'Customers', 'Customer Created',
 'Triggered when a new customer is created on the platform. Sends the customer data.',
 $json${
  "id": "cus_4T7M2P",
  "first_name": "Sofia",
  "last_name": "Lindqvist",
  "email": "sofia.lindqvist@example.com",
  "phone": "+46 70 123 45 67",
  "language": "sv",
  "created_at": "2026-11-22T10:00:00Z",
  "marketing_opt_in": true
}$json$::jsonb, 8),
('customer.updated', 'Customers', 'Customer Updated',
 'Triggered when an existing customer is changed. Sends the updated customer data.',
 $json${
  "id": "cus_4T7M2P",
  "first_name": "Sofia",
  "last_name": "Lindqvist",
  "email": "sofia.lindqvist@example.com",
  "phone": "+46 70 123 45 67",
  "language": "sv",
  "updated_at": "2026-11-22T10:00:00Z",
  "changes": {
    "phone": {
      "from": "+46 70 000 00 00",
      "to": "+46 70 123 45 67"
    }
  }
}$json$::jsonb, 9),
('customer.removed', 'Customers', 'Customer Removed',
 'Triggered when a customer is removed from the platform.',
 $json${
  "id": "cus_4T7M2P",
  "type": "customer",
  "removed_at": "2026-11-22T10:00:00Z",
  "removed_by": {
    "id": "emp_22",
    "name": "Marta Kovac"
  }
}$json$::jsonb, 10),
('checkin.scanned', 'Check-in', 'Check-in Scanned',
 'Triggered when a customer is checked in or any ticket is scanned.',
 $json${
  "ticket_id": "tkt_0091",
  "booking_id": "bkg_8F3K2Q",
  "scanned_at": "2026-11-22T10:00:00Z",
  "location": "Main square meeting point",
  "scanned_by": {
    "id": "emp_22",
    "name": "Marta Kovac"
  },
  "result": "valid"
}$json$::jsonb, 11),
('account.created', 'Accounts', 'Account Created',
 'Triggered when a new reseller or agent account is created.',
 $json${
  "id": "acc_310",
  "name": "Nordic Travel Agency",
  "type": "reseller",
  "commission_percent": 15,
  "currency": "EUR",
  "created_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 12),
('account.updated', 'Accounts', 'Account Updated',
 'Triggered when an existing account is changed.',
 $json${
  "id": "acc_310",
  "name": "Nordic Travel Agency",
  "type": "reseller",
  "commission_percent": 18,
  "updated_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 13),
('account.removed', 'Accounts', 'Account Removed',
 'Triggered when an existing account is removed.',
 $json${
  "id": "acc_310",
  "type": "account",
  "removed_at": "2026-11-22T10:00:00Z",
  "removed_by": {
    "id": "emp_22",
    "name": "Marta Kovac"
  }
}$json$::jsonb, 14),
('contact.created', 'Contacts', 'Contact Created',
 'Triggered when a contact is created.',
 $json${
  "id": "con_77",
  "account_id": "acc_310",
  "name": "Lars Berg",
  "email": "lars@nordic-travel.example",
  "phone": "+47 22 00 11 22",
  "created_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 15),
('contact.updated', 'Contacts', 'Contact Updated',
 'Triggered when a contact is changed.',
 $json${
  "id": "con_77",
  "account_id": "acc_310",
  "name": "Lars Berg",
  "email": "lars.berg@nordic-travel.example",
  "updated_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 16),
('contact.removed', 'Contacts', 'Contact Removed',
 'Triggered when a contact is removed.',
 $json${
  "id": "con_77",
  "type": "contact",
  "removed_at": "2026-11-22T10:00:00Z",
  "removed_by": {
    "id": "emp_22",
    "name": "Marta Kovac"
  }
}$json$::jsonb, 17),
('employee.created', 'Employees', 'Employee Created',
 'Triggered when an employee is created on the platform.',
 $json${
  "id": "emp_22",
  "name": "Marta Kovac",
  "email": "marta@tours.example",
  "role": "guide",
  "created_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 18),
('employee.updated', 'Employees', 'Employee Updated',
 'Triggered when an employee is changed.',
 $json${
  "id": "emp_22",
  "name": "Marta Kovac",
  "email": "marta@tours.example",
  "role": "senior_guide",
  "updated_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 19),
('employee.removed', 'Employees', 'Employee Removed',
 'Triggered when an employee is removed from the platform.',
 $json${
  "id": "emp_22",
  "type": "employee",
  "removed_at": "2026-11-22T10:00:00Z",
  "removed_by": {
    "id": "emp_22",
    "name": "Marta Kovac"
  }
}$json$::jsonb, 20),
('package.created', 'Packages', 'Package Created',
 'Triggered when a package (a bundle of activities) is created on the platform.',
 $json${
  "id": "pkg_12",
  "name": "City Weekend",
  "activities": [
    "act_41",
    "act_42"
  ],
  "price": {
    "currency": "EUR",
    "amount": 19900
  },
  "created_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 21),
('package.updated', 'Packages', 'Package Updated',
 'Triggered when a package is changed.',
 $json${
  "id": "pkg_12",
  "name": "City Weekend Deluxe",
  "activities": [
    "act_41",
    "act_42",
    "act_43"
  ],
  "price": {
    "currency": "EUR",
    "amount": 24900
  },
  "updated_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 22),
('package.removed', 'Packages', 'Package Removed',
 'Triggered when a package is removed.',
 $json${
  "id": "pkg_12",
  "type": "package",
  "removed_at": "2026-11-22T10:00:00Z",
  "removed_by": {
    "id": "emp_22",
    "name": "Marta Kovac"
  }
}$json$::jsonb, 23),
('activity.created', 'Activities', 'Activity Created',
 'Triggered when an activity is created.',
 $json${
  "id": "act_41",
  "name": "Sunset Kayak Trip",
  "duration_minutes": 150,
  "location": "Harbour pier 3",
  "capacity": 12,
  "created_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 24),
('activity.updated', 'Activities', 'Activity Updated',
 'Triggered when an activity is changed.',
 $json${
  "id": "act_41",
  "name": "Sunset Kayak Trip",
  "duration_minutes": 180,
  "capacity": 14,
  "updated_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 25),
('activity.removed', 'Activities', 'Activity Removed',
 'Triggered when an activity is removed.',
 $json${
  "id": "act_41",
  "type": "activity",
  "removed_at": "2026-11-22T10:00:00Z",
  "removed_by": {
    "id": "emp_22",
    "name": "Marta Kovac"
  }
}$json$::jsonb, 26),
('product.created', 'Products', 'Product Created',
 'Triggered when a product is created on the platform or becomes available under a contract.',
 $json${
  "id": "prd_CITYWALK",
  "name": "Old Town Walking Tour",
  "contract_id": "CTR-1042",
  "currency": "EUR",
  "options": [
    {
      "id": "opt_morning",
      "name": "Morning"
    },
    {
      "id": "opt_evening",
      "name": "Evening"
    }
  ],
  "created_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 27),
('product.updated', 'Products', 'Product Updated',
 'Triggered when an existing product is changed.',
 $json${
  "id": "prd_CITYWALK",
  "name": "Old Town Walking Tour",
  "contract_id": "CTR-1042",
  "changes": {
    "duration_minutes": {
      "from": 90,
      "to": 120
    }
  },
  "updated_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 28),
('product.removed', 'Products', 'Product Removed',
 'Triggered when a product is removed from the platform or from a contract.',
 $json${
  "id": "prd_CITYWALK",
  "type": "product",
  "removed_at": "2026-11-22T10:00:00Z",
  "removed_by": {
    "id": "emp_22",
    "name": "Marta Kovac"
  },
  "contract_id": "CTR-1042"
}$json$::jsonb, 29),
('inventory.changed', 'Inventory', 'Inventory Changed',
 'Triggered when a service has its inventory updated by an employee through inventory management.',
 $json${
  "product_id": "prd_CITYWALK",
  "slot_start": "2026-12-05T09:30:00Z",
  "capacity": {
    "from": 20,
    "to": 25
  },
  "changed_by": {
    "id": "emp_22",
    "name": "Marta Kovac"
  },
  "changed_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 30),
('availability.updated', 'Inventory', 'Availability Updated',
 'Triggered when the availability of a product changes.',
 $json${
  "product_id": "prd_CITYWALK",
  "slot_start": "2026-12-05T09:30:00Z",
  "vacancies": 3,
  "capacity": 25,
  "status": "limited",
  "updated_at": "2026-11-22T10:00:00Z"
}$json$::jsonb, 31),
('flight.delay_status_changed', 'Flights', 'Flight Delay Status Changed',
 'Triggered when the flight status of a Delay Care booking changes (for example from Scheduled to Delayed).',
 $json${
  "booking_id": "bkg_DC2291",
  "flight_number": "SK1467",
  "carrier": "SK",
  "scheduled_departure": "2026-12-05T07:10:00Z",
  "estimated_departure": "2026-12-05T09:05:00Z",
  "previous_status": "scheduled",
  "new_status": "delayed",
  "delay_minutes": 115
}$json$::jsonb, 32);
