"""mpesa-ops: operations monitoring for M-Pesa STK Push collections."""

__version__ = "0.1.0"
